// tests/tls/test_pki.cc: a throw-away PKI made with the openssl CLI.
#include "tests/tls/test_pki.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace shardring::tls::testing {
namespace {

// EC P-256 everywhere: what Discord's edge presents, and fast to make.
constexpr char kScript[] = R"SCRIPT(set -eu
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
cat > leaf.ext <<'END'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
END
key ca.key
openssl req -new -x509 -key ca.key -out ca.pem -days 30 -sha256 \
  -subj "/CN=shardring test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
key server.key
openssl req -new -key server.key -out server.csr -subj "/CN=localhost"
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 \
  -days 30 -sha256 -extfile leaf.ext -out server.pem
cat server.pem ca.pem > server-chain.pem
key other-ca.key
openssl req -new -x509 -key other-ca.key -out other-ca.pem -days 30 -sha256 \
  -subj "/CN=unknown test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
key unknown.key
openssl req -new -key unknown.key -out unknown.csr -subj "/CN=localhost"
openssl x509 -req -in unknown.csr -CA other-ca.pem -CAkey other-ca.key \
  -set_serial 3 -days 30 -sha256 -extfile leaf.ext -out unknown.pem
cat unknown.pem other-ca.pem > unknown-chain.pem
# openssl x509 cannot back-date a certificate; openssl ca can.
key expired.key
openssl req -new -key expired.key -out expired.csr -subj "/CN=localhost"
mkdir -p ca-db
: > ca-db/index.txt
echo 04 > ca-db/serial
cat > ca.cnf <<'END'
[ca]
default_ca = test
[test]
database = ca-db/index.txt
new_certs_dir = ca-db
serial = ca-db/serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
email_in_dn = no
unique_subject = no
[any]
commonName = supplied
END
openssl ca -batch -config ca.cnf -in expired.csr -out expired.pem -notext \
  -startdate 20200101000000Z -enddate 20200201000000Z -extfile leaf.ext
cat expired.pem ca.pem > expired-chain.pem
echo "this is not a certificate" > not-a-cert.txt
)SCRIPT";

struct PkiHolder {
  TestPki pki;
  std::string error;

  PkiHolder() {
    std::error_code ec;
    std::string templ =
        (std::filesystem::temp_directory_path(ec) / "shardring-tls-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      error = "mkdtemp failed for " + templ;
      return;
    }
    const std::filesystem::path dir = templ;
    {
      std::ofstream script(dir / "make.sh");
      script << kScript;
    }
    const std::string cmd = "cd '" + dir.string() + "' && bash make.sh > make.log 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::ifstream log(dir / "make.log");
      std::stringstream text;
      text << log.rdbuf();
      error = "openssl failed making test certificates in " + dir.string() + ":\n" + text.str();
      return;
    }
    auto f = [&](const char* name) { return (dir / name).string(); };
    pki.dir = dir.string();
    pki.ca_cert = f("ca.pem");
    pki.server_cert = f("server.pem");
    pki.server_chain = f("server-chain.pem");
    pki.server_key = f("server.key");
    pki.other_ca_cert = f("other-ca.pem");
    pki.unknown_cert = f("unknown-chain.pem");
    pki.unknown_key = f("unknown.key");
    pki.expired_cert = f("expired-chain.pem");
    pki.expired_key = f("expired.key");
    pki.not_a_cert = f("not-a-cert.txt");
  }

  ~PkiHolder() {
    if (!pki.dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(pki.dir, ec);
    }
  }
};

}  // namespace

const TestPki& GetTestPki(std::string* error) {
  static PkiHolder holder;
  if (error != nullptr) *error = holder.error;
  return holder.pki;
}

}  // namespace shardring::tls::testing

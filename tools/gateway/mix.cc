#include "tools/gateway/mix.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "parse/envelope.h"
#include "simdjson.h"
#include "tools/gateway/text.h"

namespace shardring::gatewaysrv {
namespace {

// Markers written where a patch goes while a template is built. JSON text
// cannot hold raw control characters, so they never collide with data.
constexpr char kGuildMarker = '\x01';
constexpr char kSnowflakeMarker = '\x02';

// The built-in events. Their `d` objects are modelled on real gateway
// payloads from the corpus described in tests/data/corpus/SOURCES.md:
// disgord testdata (BSD-3-Clause, Copyright (c) 2018 Anders Øen Fylling):
// MESSAGE_CREATE, PRESENCE_UPDATE, TYPING_START, GUILD_MEMBER_UPDATE;
// serenity test resources (ISC, Copyright (c) 2016 Serenity Contributors):
// the rich-embed message, MESSAGE_REACTION_ADD, VOICE_STATE_UPDATE;
// discord-api-docs examples (MIT for code samples): INTERACTION_CREATE and
// the crossposted message; twilight (ISC) member chunk fields. Trimmed,
// updated to v10 field names, and given new text; ids are replaced per event.
struct BuiltinEvent {
  const char* type;
  uint32_t weight;
  const char* d;
};

constexpr BuiltinEvent kBuiltin[] = {
    {"MESSAGE_CREATE", 26,
     R"json({"type":0,"tts":false,"timestamp":"2024-05-02T18:35:29.261000+00:00","pinned":false,"nonce":"1235880915104989184","mentions":[],"mention_roles":[],"mention_everyone":false,"member":{"roles":["244241390555365376","282972162221146113","377890198677094401"],"premium_since":null,"pending":false,"nick":"Anders 🦊","mute":false,"joined_at":"2016-11-04T20:46:04.571000+00:00","flags":0,"deaf":false,"communication_disabled_until":null,"avatar":null},"id":"1235880916157890560","flags":0,"embeds":[],"edited_timestamp":null,"content":"Deploy finished ✅ — latency back under 40 ms on every shard. Merci à tous! 🎉 Next: the résumé parser, ünïcödé names and 日本語 channel topics.","components":[],"channel_id":"295808196675633163","author":{"username":"anders","public_flags":0,"id":"228846961774559232","global_name":"Anders","discriminator":"0","clan":null,"avatar_decoration_data":null,"avatar":"e3b02f485e421a346513f1fddd747d65"},"attachments":[],"guild_id":"244200618854580224"})json"},
    {"MESSAGE_CREATE", 6,
     R"json({"type":19,"tts":false,"timestamp":"2024-05-02T18:36:02.118000+00:00","referenced_message":{"type":0,"tts":false,"timestamp":"2024-05-02T18:35:29.261000+00:00","pinned":false,"mentions":[],"mention_roles":[],"mention_everyone":false,"id":"1235880916157890560","flags":0,"embeds":[],"edited_timestamp":null,"content":"Big news! In this <#278325129692446722> channel! 🔥","components":[],"channel_id":"290926798999357250","author":{"username":"mason","public_flags":131141,"id":"53908099506183680","global_name":"Mason","discriminator":"0","avatar":"a_bab14f271d565501444b2ca3be944b25"},"attachments":[]},"reactions":[{"count":3,"count_details":{"burst":0,"normal":3},"me":false,"me_burst":false,"emoji":{"id":null,"name":"🔥"},"burst_colors":[]}],"pinned":false,"nonce":"1235881054338547712","mentions":[{"username":"mason","public_flags":131141,"member":{"roles":["539082325061836999"],"nick":null,"joined_at":"2017-03-13T19:19:14.040000+00:00","flags":0,"deaf":false,"mute":false},"id":"53908099506183680","global_name":"Mason","discriminator":"0","avatar":"a_bab14f271d565501444b2ca3be944b25"}],"mention_roles":[],"mention_everyone":false,"message_reference":{"type":0,"channel_id":"290926798999357250","message_id":"1235880916157890560","guild_id":"244200618854580224"},"member":{"roles":["539082325061836999"],"premium_since":null,"pending":false,"nick":"Zoë","mute":false,"joined_at":"2019-08-01T10:00:00.000000+00:00","flags":0,"deaf":false,"avatar":null},"id":"1235881055408095232","flags":0,"embeds":[],"edited_timestamp":null,"content":"Ça marche 👍 — je regarde ça ce soir. Ελέγχω και τα logs. 🙏","components":[],"channel_id":"290926798999357250","author":{"username":"zoe.k","public_flags":64,"id":"380486887309180929","global_name":"Zoë K.","discriminator":"0","avatar":"01dd3445d59a5bae1c883de28325865b"},"attachments":[],"guild_id":"244200618854580224"})json"},
    {"MESSAGE_CREATE", 4,
     R"json({"attachments":[],"tts":false,"embeds":[{"description":"Kyon is your ordinary high school freshman who has long given up on his childhood dreams of encountering the fantastic and supernatural…or so he thought. From the very first day of school, his classmate–the beautiful but eccentric Haruhi Suzumiya–makes it very clear that her only desire is to meet aliens, time travelers, and psychics! A chance conversation between the two inspires Haruhi to form the SOS Brigade, a school club created for the sole purpose of getting these supernatural beings together. By the end of this first volume, Kyon quickly finds out that these seemingly “helpless victims” of Haruhi’s are actually members of secret organizations… \n(Source: Yen Press)","author":{"url":"https://kitsu.io/manga/suzumiya-haruhi-no-yuuutsu-1d17ddde-b0df-4389-9d4a-f06faa4d6427","name":"Suzumiya Haruhi no Yuuutsu"},"color":16738048,"fields":[{"inline":true,"name":"Type","value":"Manga"},{"inline":true,"name":"Volume(s)","value":"20"},{"inline":true,"name":"Rating","value":"75.5/100"},{"inline":true,"name":"Chapters","value":"105"},{"inline":true,"name":"Rank","value":"758"}],"footer":{"text":"2005-09-26 – 2013-09-26","proxy_icon_url":"https://images-ext-1.discordapp.net/external/pfZ4lvyhr9-sWzjU_u1DcTYZ7QutEFR4e1CZoXq2CS8/http/i.imgur.com/taRJXqB.png","icon_url":"http://i.imgur.com/taRJXqB.png"},"type":"rich","thumbnail":{"url":"https://media.kitsu.io/manga/poster_images/2899/original.jpg?1434255521","width":225,"proxy_url":"https://images-ext-2.discordapp.net/external/PPXC92RHs7u8dxa4EGK3IBBuCLibURqP7-LOzWG_zxo/%3F1434255521/https/media.kitsu.io/manga/poster_images/2899/original.jpg","height":315}}],"timestamp":"2024-05-02T21:09:39.366000+00:00","mention_everyone":false,"member":{"roles":["404055264887832577"],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2018-01-21T12:00:00.000000+00:00","flags":0,"deaf":false,"avatar":null},"id":"1235921006015356928","pinned":false,"flags":0,"edited_timestamp":null,"components":[],"author":{"username":"Yuki α","public_flags":0,"discriminator":"0097","bot":true,"id":"134755682170699776","global_name":null,"avatar":"cf3f033038c87cb89aa9eadc37ef9c09"},"mention_roles":[],"content":"","channel_id":"244567637332328449","mentions":[],"type":0,"guild_id":"244200618854580224"})json"},
    {"MESSAGE_UPDATE", 8,
     R"json({"type":0,"tts":false,"timestamp":"2024-05-02T18:35:29.261000+00:00","pinned":false,"mentions":[],"mention_roles":[],"mention_everyone":false,"member":{"roles":["244241390555365376","377890198677094401"],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2016-11-04T20:46:04.571000+00:00","flags":0,"deaf":false,"avatar":null},"id":"1235880916157890560","flags":0,"embeds":[],"edited_timestamp":"2024-05-02T18:37:11.904000+00:00","content":"edit: the 🐛 was in the resume path, not the parser — fixed in #4312 ✔️","components":[],"channel_id":"295808196675633163","author":{"username":"anders","public_flags":0,"id":"228846961774559232","global_name":"Anders","discriminator":"0","avatar":"e3b02f485e421a346513f1fddd747d65"},"attachments":[],"guild_id":"244200618854580224"})json"},
    {"MESSAGE_DELETE", 5,
     R"json({"id":"1235880916157890560","channel_id":"295808196675633163","guild_id":"244200618854580224"})json"},
    {"PRESENCE_UPDATE", 20,
     R"json({"user":{"id":"228846961774559232"},"status":"online","guild_id":"244200618854580224","client_status":{"desktop":"online","mobile":"idle"},"activities":[{"type":0,"timestamps":{"start":1714674929580},"name":"Celeste","id":"72b9e063155d727a","created_at":1714674929699,"application_id":"504431932467298304","assets":{"large_text":"Chapter 7 — The Summit 🏔️","large_image":"504434006479945728"},"details":"Farewell","state":"🍓 113 / 175"},{"type":4,"state":"shipping shards ⚡","name":"Custom Status","id":"custom","emoji":{"name":"⚡"},"created_at":1714674929700}]})json"},
    {"TYPING_START", 12,
     R"json({"user_id":"228846961774559232","timestamp":1714674929,"member":{"user":{"username":"anders","public_flags":0,"id":"228846961774559232","global_name":"Anders 🦊","discriminator":"0","avatar":"e3b02f485e421a346513f1fddd747d65"},"roles":["244241390555365376","282972162221146113","377890198677094401"],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2016-11-04T20:46:04.571000+00:00","flags":0,"deaf":false,"communication_disabled_until":null,"avatar":null},"channel_id":"295808196675633163","guild_id":"244200618854580224"})json"},
    {"GUILD_MEMBER_UPDATE", 4,
     R"json({"user":{"username":"anders","public_flags":0,"id":"228846961774559232","global_name":"Anders","discriminator":"0","avatar":"e3b02f485e421a346513f1fddd747d65","avatar_decoration_data":null},"roles":["486833142091612160","244241390555365376"],"premium_since":null,"pending":false,"nick":"Ánders — on call 📟","joined_at":"2016-11-04T20:46:04.571000+00:00","flags":0,"communication_disabled_until":null,"avatar":null,"guild_id":"244200618854580224"})json"},
    {"MESSAGE_REACTION_ADD", 8,
     R"json({"user_id":"114941315417899012","type":0,"message_id":"1235880916157890560","message_author_id":"228846961774559232","member":{"user":{"username":"kyra","public_flags":0,"id":"114941315417899012","global_name":"Kyra 🌸","discriminator":"0","avatar":"5f95e03c3523a2de6f3136f636fba136"},"roles":["244241390555365376"],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2017-02-14T09:30:00.000000+00:00","flags":0,"deaf":false,"avatar":null},"emoji":{"name":"👍","id":null},"channel_id":"244567637332328449","burst":false,"guild_id":"244200618854580224"})json"},
    {"MESSAGE_REACTION_REMOVE", 3,
     R"json({"user_id":"114941315417899012","type":0,"message_id":"1235880916157890560","emoji":{"name":"🔥","id":null},"channel_id":"244567637332328449","burst":false,"guild_id":"244200618854580224"})json"},
    {"VOICE_STATE_UPDATE", 3,
     R"json({"member":{"user":{"username":"bobbytables","public_flags":0,"id":"124926163104694273","global_name":"Robert'); DROP TABLE Students;--","discriminator":"0","avatar":"01dd3445d59a5bae1c883de28325865b"},"roles":[],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2018-11-23T09:45:22.389000+00:00","flags":0,"deaf":false,"avatar":null},"user_id":"124926163104694273","suppress":false,"session_id":"5f47bf7bd3b8c35ea157ebcde956a1bf","self_video":false,"self_mute":true,"self_deaf":false,"request_to_speak_timestamp":null,"mute":false,"guild_id":"244200618854580224","deaf":false,"channel_id":"515462858608345091"})json"},
    {"INTERACTION_CREATE", 2,
     R"json({"version":1,"type":2,"token":"aW50ZXJhY3Rpb246MTIzNTg4MTA1NTQwODA5NTIzMjpzeW50aGV0aWMtZ2F0ZXdheS10b2tlbi1mb3ItbG9hZC10ZXN0cw","member":{"user":{"username":"mason","public_flags":131141,"id":"53908232506183680","global_name":"Mason","discriminator":"0","avatar":"a_d5efa99b3eeaa7dd43acca82f5692432"},"roles":["539082325061836999"],"premium_since":null,"permissions":"2147483647","pending":false,"nick":null,"mute":false,"joined_at":"2017-03-13T19:19:14.040000+00:00","flags":0,"deaf":false,"avatar":null},"id":"1235881055408095232","guild_id":"244200618854580224","entitlements":[],"authorizing_integration_owners":{"0":"244200618854580224"},"application_id":"771825006014889984","app_permissions":"442368","guild_locale":"en-US","locale":"fr","data":{"options":[{"type":3,"name":"cardname","value":"The Gitrog Monster 🐸"}],"type":1,"name":"cardsearch","id":"771825006014889984"},"context":0,"channel_id":"645027906669510667","channel":{"type":0,"topic":"Card talk — règles & decks 🃏","rate_limit_per_user":0,"position":3,"permission_overwrites":[],"parent_id":null,"nsfw":false,"name":"cards","last_message_id":"1235880916157890560","id":"645027906669510667","guild_id":"244200618854580224","flags":0}})json"},
};

// JSON string escaping for keys and names we write ourselves.
void append_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
}

bool is_digits(std::string_view s) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A large GUILD_CREATE built from member and channel templates (the shape
// of disgord's captured large guild, testdata/large.json, BSD-3-Clause).
std::string build_guild_d(bool large) {
  const int members = large ? 120 : 24;
  const int channels = large ? 40 : 10;
  std::string d;
  d.reserve(large ? 96 << 10 : 12 << 10);
  d += R"({"id":"244200618854580224","name":")";
  d += large ? "Shardring Löad Tëst — large guild 🌍" : "Shardring test guild ✨";
  d +=
      R"(","icon":"a_2f485e421a346513f1fddd747d65e3b0","splash":null,"discovery_splash":null,"banner":null,"owner_id":"228846961774559232","region":"deprecated","afk_channel_id":null,"afk_timeout":300,"verification_level":1,"default_message_notifications":1,"explicit_content_filter":2,"features":["COMMUNITY","NEWS","INVITE_SPLASH"],"mfa_level":0,"application_id":null,"system_channel_id":"244200618854580224","system_channel_flags":0,"rules_channel_id":null,"vanity_url_code":null,"description":"Synthetic guild for load tests 🧪","premium_tier":2,"premium_subscription_count":7,"preferred_locale":"en-US","nsfw_level":0,"max_members":500000,"max_video_channel_users":25,"joined_at":"2024-01-01T00:00:00.000000+00:00","large":)";
  d += large ? "true" : "false";
  d += R"(,"unavailable":false,"member_count":)";
  d += large ? "18734" : "24";
  d +=
      R"(,"voice_states":[],"threads":[],"stage_instances":[],"guild_scheduled_events":[],"soundboard_sounds":[],"stickers":[],"emojis":[{"roles":[],"require_colons":true,"name":"blobwave","managed":false,"id":"396521773216301056","available":true,"animated":true},{"roles":[],"require_colons":true,"name":"ferris","managed":false,"id":"396521773216301057","available":true,"animated":false}],"roles":[{"position":0,"permissions":"104320577","name":"@everyone","mentionable":false,"managed":false,"id":"244200618854580224","hoist":false,"flags":0,"color":0},{"position":3,"permissions":"2146958847","name":"developers","mentionable":true,"managed":false,"id":"244241390555365376","hoist":true,"flags":0,"color":15105570},{"position":2,"permissions":"1379400777","name":"Bot","mentionable":true,"managed":false,"id":"244241652561084416","hoist":false,"flags":0,"color":15844367},{"position":1,"permissions":"104320577","name":"Member ⭐","mentionable":false,"managed":false,"id":"377890198677094401","hoist":true,"flags":0,"color":15158332}],"channels":[)";
  for (int i = 0; i < channels; ++i) {
    if (i) d += ',';
    append_to(&d, R"({"type":)", i % 5 == 4 ? 2 : 0, R"(,"topic":)",
              i % 3 == 0 ? R"("Général — discussions & annonces 📣")" : "null",
              R"(,"rate_limit_per_user":0,"position":)", i,
              R"(,"permission_overwrites":[],"parent_id":null,"nsfw":false,"name":"channel-)", i,
              R"(","last_message_id":"1235880916157890560","id":"2959081966756331)", 100 + i,
              R"(","flags":0})");
  }
  d += R"(],"members":[)";
  for (int i = 0; i < members; ++i) {
    if (i) d += ',';
    append_to(
        &d, R"({"user":{"username":"member_)", i, R"(","public_flags":0,"id":"22884696177455)",
        1000 + i, R"(","global_name":)", i % 4 == 0 ? R"("Ñandú )" : R"("Member )", i,
        i % 7 == 0 ? R"( 🎮")" : R"(")",
        R"(,"discriminator":"0","avatar":"e3b02f485e421a346513f1fddd747d65"},"roles":["377890198677094401"],"premium_since":null,"pending":false,"nick":null,"mute":false,"joined_at":"2020-04-04T04:04:04.000000+00:00","flags":0,"deaf":false,"communication_disabled_until":null,"avatar":null})");
  }
  d += R"(],"presences":[)";
  const int presences = members / 2;
  for (int i = 0; i < presences; ++i) {
    if (i) d += ',';
    append_to(
        &d, R"({"user":{"id":"22884696177455)", 1000 + i * 2, R"("},"status":")",
        i % 3 == 0 ? "idle" : "online",
        R"(","client_status":{"desktop":"online"},"activities":[{"type":0,"name":"Factorio","id":"ec0b28a579ecb4bd","created_at":1714674929699}]})");
  }
  d += "]}";
  return d;
}

}  // namespace

size_t write_u64(char* dst, uint64_t v) noexcept {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) dst[i] = tmp[n - 1 - i];
  return n;
}

namespace {

size_t digits(uint64_t v) noexcept {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// Writes exactly `width` digits of v (zero-padded on the left).
void write_fixed(char* dst, uint64_t v, size_t width) noexcept {
  for (size_t i = width; i-- > 0;) {
    dst[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

void apply_patches(char* body, const Template& t, const Splice& s) noexcept {
  uint64_t flake = s.snowflake;
  for (const Patch& p : t.patches) {
    if (p.kind == PatchKind::kGuildId) {
      write_fixed(body + p.offset, s.guild_id, kGuildIdDigits);
    } else {
      write_fixed(body + p.offset, flake++, kSnowflakeDigits);
    }
  }
}

}  // namespace

size_t payload_size(const Template& t, const Splice& s) noexcept {
  return t.prefix.size() + digits(s.seq) + kMid.size() + digits(s.ts_ns) + t.body.size();
}

void append_payload(std::string& out, const Template& t, const Splice& s) {
  char num[20];
  out.append(t.prefix);
  out.append(num, write_u64(num, s.seq));
  out.append(kMid);
  out.append(num, write_u64(num, s.ts_ns));
  const size_t body_at = out.size();
  out.append(t.body);
  apply_patches(out.data() + body_at, t, s);
}

void append_frame(std::string& out, const Template& t, const Splice& s) {
  const size_t n = payload_size(t, s);
  char h[10];
  size_t hn;
  h[0] = static_cast<char>(0x81);  // FIN | text
  if (n < 126) {
    h[1] = static_cast<char>(n);
    hn = 2;
  } else if (n <= 0xFFFF) {
    h[1] = 126;
    h[2] = static_cast<char>(n >> 8);
    h[3] = static_cast<char>(n);
    hn = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; ++i) {
      h[2 + i] = static_cast<char>(uint64_t{n} >> (56 - 8 * i));
    }
    hn = 10;
  }
  out.append(h, hn);
  append_payload(out, t, s);
}

uint64_t guild_id(uint32_t shard, uint32_t total, uint32_t index) noexcept {
  constexpr uint64_t kBaseMs = 100'000'000'000;  // -> 18-digit snowflakes
  const uint64_t t = total == 0 ? 1 : total;
  const uint64_t ms = t * (kBaseMs / t + 1 + index) + shard;
  return ms << 22 | (uint64_t{index} & 0xFFF);
}

absl::StatusOr<Template> Mix::make_template(std::string_view type, std::string_view d_json,
                                            Ids ids) {
  if (type.empty()) return absl::InvalidArgumentError("empty event type");
  simdjson::dom::parser parser;
  simdjson::padded_string padded(d_json);
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root); err) {
    return absl::InvalidArgumentError(cat("d is not valid JSON: ", simdjson::error_message(err)));
  }
  std::string d;
  std::string guild_orig;
  simdjson::dom::object obj;
  // For GUILD_* events the object's own id is the guild's id.
  const bool guild_event = type.rfind("GUILD_", 0) == 0 &&
                           type.find("MEMBER") == std::string_view::npos &&
                           type.find("ROLE") == std::string_view::npos;
  if (ids == Ids::kVerbatim) {
    d = std::string(d_json);
  } else if (root.get_object().get(obj) == simdjson::SUCCESS) {
    d += '{';
    bool first = true;
    for (auto field : obj) {
      if (!first) d += ',';
      first = false;
      d += '"';
      append_escaped(d, field.key);
      d += "\":";
      std::string_view sv;
      const bool digit_string =
          field.value.get_string().get(sv) == simdjson::SUCCESS && is_digits(sv);
      if (digit_string && (field.key == "guild_id" || (guild_event && field.key == "id"))) {
        guild_orig = std::string(sv);
        d += '"';
        d.append(kGuildIdDigits, kGuildMarker);
        d += '"';
      } else if (digit_string && (field.key == "id" || field.key == "message_id")) {
        d += '"';
        d.append(kSnowflakeDigits, kSnowflakeMarker);
        d += '"';
      } else {
        d += simdjson::minify(field.value);
      }
    }
    d += '}';
  } else {
    d = simdjson::minify(root);
  }
  // Every other mention of the event's guild (member.guild_id, a message
  // reference, ...) becomes that shard's guild too.
  if (!guild_orig.empty()) {
    const std::string needle = cat("\"", guild_orig, "\"");
    std::string replaced;
    replaced.reserve(d.size());
    size_t pos = 0;
    for (size_t hit; (hit = d.find(needle, pos)) != std::string::npos; pos = hit + needle.size()) {
      replaced.append(d, pos, hit - pos);
      replaced += '"';
      replaced.append(kGuildIdDigits, kGuildMarker);
      replaced += '"';
    }
    replaced.append(d, pos);
    d = std::move(replaced);
  }
  Template t;
  t.type = std::string(type);
  t.prefix = "{\"t\":\"";
  append_escaped(t.prefix, type);
  t.prefix += "\",\"s\":";
  t.body = ",\"d\":" + d + "}";
  for (size_t i = 0; i < t.body.size();) {
    const char c = t.body[i];
    if (c == kGuildMarker || c == kSnowflakeMarker) {
      const bool guild = c == kGuildMarker;
      const size_t width = guild ? kGuildIdDigits : kSnowflakeDigits;
      t.patches.push_back(
          {static_cast<uint32_t>(i), guild ? PatchKind::kGuildId : PatchKind::kSnowflake});
      std::memset(t.body.data() + i, '0', width);
      i += width;
    } else {
      ++i;
    }
  }
  return t;
}

void Mix::build_table() {
  uint64_t total = 0;
  for (const Template& t : events_) total += t.weight;
  table_.assign(kTableSize, 0);
  // Spread each template's share over the table in proportion to weight.
  size_t at = 0;
  uint64_t acc = 0;
  for (size_t i = 0; i < events_.size(); ++i) {
    acc += events_[i].weight;
    const size_t end = static_cast<size_t>(acc * kTableSize / total);
    for (; at < end; ++at) table_[at] = static_cast<uint16_t>(i);
  }
  for (; at < kTableSize; ++at) {
    table_[at] = static_cast<uint16_t>(events_.size() - 1);
  }
  // Interleave, so that consecutive draws of nearby values differ.
  for (size_t i = kTableSize - 1; i > 0; --i) {
    const size_t j = (i * 2654435761u) % (i + 1);
    std::swap(table_[i], table_[j]);
  }
}

Mix Mix::builtin() {
  Mix m;
  for (const BuiltinEvent& e : kBuiltin) {
    absl::StatusOr<Template> t = make_template(e.type, e.d);
    // The built-in data is ours and valid; a failure is a bug in this file.
    if (!t.ok()) std::abort();
    t->weight = e.weight;
    m.events_.push_back(*std::move(t));
  }
  m.build_table();
  m.guild_small_ = *make_template("GUILD_CREATE", build_guild_d(false));
  m.guild_large_ = *make_template("GUILD_CREATE", build_guild_d(true));
  return m;
}

absl::StatusOr<Mix> Mix::from_lines(std::string_view text, std::string_view name) {
  Mix m = builtin();
  m.events_.clear();
  simdjson::dom::parser parser;
  parse::Parser raw_parser;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    size_t lead = 0;
    while (lead < line.size() && (line[lead] == ' ' || line[lead] == '\t')) {
      ++lead;
    }
    line.remove_prefix(lead);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = cat(name, ":", line_no, ": ");
    simdjson::padded_string padded_line(line);
    simdjson::dom::object obj;
    if (auto err = parser.parse(padded_line).get_object().get(obj); err) {
      return absl::InvalidArgumentError(
          cat(where, "not a JSON object: ", simdjson::error_message(err)));
    }
    int64_t op = -1;
    if (obj["op"].get_int64().get(op) != simdjson::SUCCESS || op != 0) {
      return absl::InvalidArgumentError(cat(where, "\"op\" must be 0 (a dispatch)"));
    }
    std::string_view type;
    if (obj["t"].get_string().get(type) != simdjson::SUCCESS || type.empty()) {
      return absl::InvalidArgumentError(cat(where, "\"t\" must be a non-empty string"));
    }
    simdjson::dom::element d;
    if (obj["d"].get(d) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(cat(where, "no \"d\""));
    }
    // d goes out byte for byte as the file has it (escapes, number
    // spellings, spacing): users compare what they receive with their mix.
    std::string padded(line);
    padded.append(parse::kPadding, '\0');
    parse::Envelope env;
    if (raw_parser.parse(std::string_view(padded.data(), line.size()), env) != parse::Errc::kOk ||
        env.d_kind == parse::JsonKind::kAbsent) {
      return absl::InvalidArgumentError(cat(where, "not a gateway payload"));
    }
    absl::StatusOr<Template> t = make_template(type, env.d, Ids::kVerbatim);
    if (!t.ok()) {
      return absl::InvalidArgumentError(cat(where, t.status().message()));
    }
    m.events_.push_back(*std::move(t));
    if (m.events_.size() > 65535) {
      return absl::InvalidArgumentError(cat(name, ": more than 65535 templates"));
    }
  }
  if (m.events_.empty()) {
    return absl::InvalidArgumentError(cat(name, ": no event templates"));
  }
  m.build_table();
  return m;
}

absl::StatusOr<Mix> Mix::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(cat("cannot read ", path));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return from_lines(ss.str(), path);
}

}  // namespace shardring::gatewaysrv

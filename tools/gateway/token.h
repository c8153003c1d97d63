// tools/gateway/token.h: what the synthetic gateway reads out of a bot
// token, as Discord does: the bot's user id, which READY reports in
// d.user.id (clients store it to tell one bot's saved sessions from
// another's). Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace shardring::gatewaysrv {

// The user id a Discord bot token encodes: its first dot-separated segment
// is the base64 (standard or URL alphabet, padding optional) of the bot's
// decimal user id. nullopt unless that segment decodes to 1-20 decimal
// digits. "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabc.xyz" -> "123456789012345678".
[[nodiscard]] std::optional<std::string> user_id_from_token(std::string_view token);

}  // namespace shardring::gatewaysrv

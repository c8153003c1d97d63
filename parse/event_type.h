// parse/event_type.h: the Discord gateway v10 dispatch event names ("t" of an
// op 0 payload) as an enum, the name <-> enum mapping, and EventFilter, the
// parsed form of `--events LIST`.
// Stage: parse (after ws::Decoder, before gateway::Session and dispatch).
// Everything here is immutable or a plain value: any thread may use it; an
// EventFilter is built once at start-up and then only read.
//
// Event list: https://discord.com/developers/docs/events/gateway-events
// ("Receive Events"). Names Discord adds later map to kUnknown; the caller
// keeps the name itself (Envelope::t) and filters on it by string.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardring::parse {

// X-macro: enumerator, wire name. Order is the enum order; append only.
#define SHARDRING_PARSE_EVENT_TYPES(X)                                              \
  X(kReady, "READY")                                                                \
  X(kResumed, "RESUMED")                                                            \
  X(kApplicationCommandPermissionsUpdate, "APPLICATION_COMMAND_PERMISSIONS_UPDATE") \
  X(kAutoModerationRuleCreate, "AUTO_MODERATION_RULE_CREATE")                       \
  X(kAutoModerationRuleUpdate, "AUTO_MODERATION_RULE_UPDATE")                       \
  X(kAutoModerationRuleDelete, "AUTO_MODERATION_RULE_DELETE")                       \
  X(kAutoModerationActionExecution, "AUTO_MODERATION_ACTION_EXECUTION")             \
  X(kChannelCreate, "CHANNEL_CREATE")                                               \
  X(kChannelUpdate, "CHANNEL_UPDATE")                                               \
  X(kChannelDelete, "CHANNEL_DELETE")                                               \
  X(kChannelPinsUpdate, "CHANNEL_PINS_UPDATE")                                      \
  X(kThreadCreate, "THREAD_CREATE")                                                 \
  X(kThreadUpdate, "THREAD_UPDATE")                                                 \
  X(kThreadDelete, "THREAD_DELETE")                                                 \
  X(kThreadListSync, "THREAD_LIST_SYNC")                                            \
  X(kThreadMemberUpdate, "THREAD_MEMBER_UPDATE")                                    \
  X(kThreadMembersUpdate, "THREAD_MEMBERS_UPDATE")                                  \
  X(kEntitlementCreate, "ENTITLEMENT_CREATE")                                       \
  X(kEntitlementUpdate, "ENTITLEMENT_UPDATE")                                       \
  X(kEntitlementDelete, "ENTITLEMENT_DELETE")                                       \
  X(kGuildCreate, "GUILD_CREATE")                                                   \
  X(kGuildUpdate, "GUILD_UPDATE")                                                   \
  X(kGuildDelete, "GUILD_DELETE")                                                   \
  X(kGuildAuditLogEntryCreate, "GUILD_AUDIT_LOG_ENTRY_CREATE")                      \
  X(kGuildBanAdd, "GUILD_BAN_ADD")                                                  \
  X(kGuildBanRemove, "GUILD_BAN_REMOVE")                                            \
  X(kGuildEmojisUpdate, "GUILD_EMOJIS_UPDATE")                                      \
  X(kGuildStickersUpdate, "GUILD_STICKERS_UPDATE")                                  \
  X(kGuildIntegrationsUpdate, "GUILD_INTEGRATIONS_UPDATE")                          \
  X(kGuildMemberAdd, "GUILD_MEMBER_ADD")                                            \
  X(kGuildMemberRemove, "GUILD_MEMBER_REMOVE")                                      \
  X(kGuildMemberUpdate, "GUILD_MEMBER_UPDATE")                                      \
  X(kGuildMembersChunk, "GUILD_MEMBERS_CHUNK")                                      \
  X(kGuildRoleCreate, "GUILD_ROLE_CREATE")                                          \
  X(kGuildRoleUpdate, "GUILD_ROLE_UPDATE")                                          \
  X(kGuildRoleDelete, "GUILD_ROLE_DELETE")                                          \
  X(kGuildScheduledEventCreate, "GUILD_SCHEDULED_EVENT_CREATE")                     \
  X(kGuildScheduledEventUpdate, "GUILD_SCHEDULED_EVENT_UPDATE")                     \
  X(kGuildScheduledEventDelete, "GUILD_SCHEDULED_EVENT_DELETE")                     \
  X(kGuildScheduledEventUserAdd, "GUILD_SCHEDULED_EVENT_USER_ADD")                  \
  X(kGuildScheduledEventUserRemove, "GUILD_SCHEDULED_EVENT_USER_REMOVE")            \
  X(kGuildSoundboardSoundCreate, "GUILD_SOUNDBOARD_SOUND_CREATE")                   \
  X(kGuildSoundboardSoundUpdate, "GUILD_SOUNDBOARD_SOUND_UPDATE")                   \
  X(kGuildSoundboardSoundDelete, "GUILD_SOUNDBOARD_SOUND_DELETE")                   \
  X(kGuildSoundboardSoundsUpdate, "GUILD_SOUNDBOARD_SOUNDS_UPDATE")                 \
  X(kSoundboardSounds, "SOUNDBOARD_SOUNDS")                                         \
  X(kIntegrationCreate, "INTEGRATION_CREATE")                                       \
  X(kIntegrationUpdate, "INTEGRATION_UPDATE")                                       \
  X(kIntegrationDelete, "INTEGRATION_DELETE")                                       \
  X(kInteractionCreate, "INTERACTION_CREATE")                                       \
  X(kInviteCreate, "INVITE_CREATE")                                                 \
  X(kInviteDelete, "INVITE_DELETE")                                                 \
  X(kMessageCreate, "MESSAGE_CREATE")                                               \
  X(kMessageUpdate, "MESSAGE_UPDATE")                                               \
  X(kMessageDelete, "MESSAGE_DELETE")                                               \
  X(kMessageDeleteBulk, "MESSAGE_DELETE_BULK")                                      \
  X(kMessageReactionAdd, "MESSAGE_REACTION_ADD")                                    \
  X(kMessageReactionRemove, "MESSAGE_REACTION_REMOVE")                              \
  X(kMessageReactionRemoveAll, "MESSAGE_REACTION_REMOVE_ALL")                       \
  X(kMessageReactionRemoveEmoji, "MESSAGE_REACTION_REMOVE_EMOJI")                   \
  X(kMessagePollVoteAdd, "MESSAGE_POLL_VOTE_ADD")                                   \
  X(kMessagePollVoteRemove, "MESSAGE_POLL_VOTE_REMOVE")                             \
  X(kPresenceUpdate, "PRESENCE_UPDATE")                                             \
  X(kRateLimited, "RATE_LIMITED")                                                   \
  X(kStageInstanceCreate, "STAGE_INSTANCE_CREATE")                                  \
  X(kStageInstanceUpdate, "STAGE_INSTANCE_UPDATE")                                  \
  X(kStageInstanceDelete, "STAGE_INSTANCE_DELETE")                                  \
  X(kSubscriptionCreate, "SUBSCRIPTION_CREATE")                                     \
  X(kSubscriptionUpdate, "SUBSCRIPTION_UPDATE")                                     \
  X(kSubscriptionDelete, "SUBSCRIPTION_DELETE")                                     \
  X(kTypingStart, "TYPING_START")                                                   \
  X(kUserUpdate, "USER_UPDATE")                                                     \
  X(kVoiceChannelEffectSend, "VOICE_CHANNEL_EFFECT_SEND")                           \
  X(kVoiceStateUpdate, "VOICE_STATE_UPDATE")                                        \
  X(kVoiceServerUpdate, "VOICE_SERVER_UPDATE")                                      \
  X(kWebhooksUpdate, "WEBHOOKS_UPDATE")

// kNone: the payload has no event name (t absent or null: every op but 0).
// kUnknown: t is a string this build does not know; Envelope::t keeps it.
enum class EventType : uint8_t {
  kNone,
  kUnknown,
#define SHARDRING_PARSE_X(e, name) e,
  SHARDRING_PARSE_EVENT_TYPES(SHARDRING_PARSE_X)
#undef SHARDRING_PARSE_X
};

// Number of EventType values, kNone and kUnknown included.
namespace internal {
inline constexpr EventType kNamedEventTypes[] = {
#define SHARDRING_PARSE_X(e, name) EventType::e,
    SHARDRING_PARSE_EVENT_TYPES(SHARDRING_PARSE_X)
#undef SHARDRING_PARSE_X
};
}  // namespace internal
inline constexpr size_t kEventTypeCount = 2 + std::size(internal::kNamedEventTypes);

// The wire name ("MESSAGE_CREATE"); "" for kNone, "UNKNOWN" for kUnknown.
[[nodiscard]] std::string_view to_string(EventType type) noexcept;

// The event named exactly `name` (case-sensitive, no escapes), else kUnknown.
// One hash, one table load and one compare: no allocation, no std::map.
[[nodiscard]] EventType event_type_from_name(std::string_view name) noexcept;

// The parsed `--events LIST`: which dispatches to deliver. Names this build
// does not know are kept as strings and matched against Envelope::t, so a
// filter can name an event Discord added after this build.
class EventFilter {
 public:
  // Allows everything (the default of `--events`).
  EventFilter() noexcept = default;

  // Parses "MESSAGE_CREATE,GUILD_CREATE,..." (ASCII spaces around names are
  // ignored). Every name must be non-empty and made of A-Z, 0-9 and '_';
  // otherwise nullopt and, if `error` is given, the offending item is
  // written there. An empty list is refused too (it would drop everything).
  [[nodiscard]] static std::optional<EventFilter> parse(std::string_view list,
                                                        std::string* error = nullptr);

  // True when a dispatch of `type` (with wire name `name`, used only for
  // kUnknown) passes. kNone (not a dispatch) always passes: the filter is
  // for dispatches only.
  [[nodiscard]] bool allows(EventType type, std::string_view name) const noexcept;

  [[nodiscard]] bool allows_all() const noexcept { return all_; }
  [[nodiscard]] const std::bitset<kEventTypeCount>& known() const noexcept { return known_; }
  [[nodiscard]] const std::vector<std::string>& unknown_names() const noexcept { return unknown_; }

 private:
  bool all_ = true;
  std::bitset<kEventTypeCount> known_;
  std::vector<std::string> unknown_;
};

}  // namespace shardring::parse

#include "broker/group_coordinator.h"

#include <algorithm>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "broker/properties.h"
#include "protocol/wire.h"

namespace runnel::broker {

struct GroupCoordinator::Member {
  std::string id;
  std::optional<std::string> instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::string protocol_type;
  std::vector<std::pair<std::string, std::string>> protocols;
  std::string assignment;
  JoinCallback awaiting_join;
  SyncCallback awaiting_sync;
  bool is_new = false;
  uint64_t heartbeat_epoch = 0;
  std::unique_ptr<asio::steady_timer> heartbeat_timer;

  const std::string* Metadata(const std::string& protocol) const {
    for (const auto& [name, metadata] : protocols) {
      if (name == protocol) return &metadata;
    }
    return nullptr;
  }
};

struct GroupCoordinator::Group {
  std::string id;
  GroupState state = GroupState::kEmpty;
  int32_t generation = 0;
  std::optional<std::string> protocol_type;
  std::optional<std::string> protocol;
  std::optional<std::string> leader;
  std::map<std::string, std::unique_ptr<Member>> members;
  // Members told MEMBER_ID_REQUIRED that have not joined yet, with their expiry timers.
  std::map<std::string, std::unique_ptr<asio::steady_timer>> pending;
  std::map<std::string, std::string> static_members;  // instance id -> member id
  bool new_member_added = false;
  uint64_t join_round = 0;  // invalidates stale join timers
  bool initial_delay = false;
  int32_t initial_delay_remaining_ms = 0;
  std::unique_ptr<asio::steady_timer> join_timer;
  std::map<std::pair<std::string, int32_t>, CommittedOffset> offsets;
  // Wall-clock ms when the group last became Empty (Kafka's currentStateTimestamp as
  // used by offset expiry), or -1 if unknown; persisted as the metadata state timestamp.
  int64_t empty_since_ms = -1;

  bool Is(GroupState s) const { return state == s; }
  bool Has(const std::string& member_id) const { return members.count(member_id) > 0; }
  int AwaitingJoin() const {
    int n = 0;
    for (const auto& [id, m] : members) n += m->awaiting_join ? 1 : 0;
    return n;
  }
  bool AllMembersJoined() const {
    return pending.empty() && AwaitingJoin() == static_cast<int>(members.size());
  }
  int32_t MaxRebalanceTimeout() const {
    int32_t t = 0;
    for (const auto& [id, m] : members) t = std::max(t, m->rebalance_timeout_ms);
    return t;
  }
};

namespace {

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// Kafka's java.util.UUID.randomUUID().toString().
std::string RandomUuidString() {
  static std::mt19937_64 rng(std::random_device{}());
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xf000ULL) | 0x4000ULL;
  lo = (lo & ~(0xc0ULL << 56)) | (0x80ULL << 56);
  char buf[40];
  snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<uint32_t>(hi >> 32),
           static_cast<uint32_t>((hi >> 16) & 0xffff), static_cast<uint32_t>(hi & 0xffff),
           static_cast<uint32_t>(lo >> 48),
           static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

}  // namespace

const char* GroupStateName(GroupState state) {
  switch (state) {
    case GroupState::kEmpty:
      return "Empty";
    case GroupState::kPreparingRebalance:
      return "PreparingRebalance";
    case GroupState::kCompletingRebalance:
      return "CompletingRebalance";
    case GroupState::kStable:
      return "Stable";
    case GroupState::kDead:
      return "Dead";
  }
  return "Dead";
}

GroupCoordinatorConfig GroupCoordinatorConfig::FromProperties(
    const std::map<std::string, std::string>& props) {
  GroupCoordinatorConfig c;
  c.min_session_timeout_ms =
      IntProperty(props, "group.min.session.timeout.ms", c.min_session_timeout_ms);
  c.max_session_timeout_ms =
      IntProperty(props, "group.max.session.timeout.ms", c.max_session_timeout_ms);
  c.initial_rebalance_delay_ms =
      IntProperty(props, "group.initial.rebalance.delay.ms", c.initial_rebalance_delay_ms);
  c.max_group_size = IntProperty(props, "group.max.size", c.max_group_size);
  c.offset_metadata_max_bytes =
      IntProperty(props, "offset.metadata.max.bytes", c.offset_metadata_max_bytes);
  c.offsets_topic_partitions =
      std::max(1, IntProperty(props, "offsets.topic.num.partitions", c.offsets_topic_partitions));
  c.offsets_retention_minutes =
      std::max(1, IntProperty(props, "offsets.retention.minutes", c.offsets_retention_minutes));
  c.offsets_retention_check_interval_ms =
      std::max<int64_t>(1, LongProperty(props, "offsets.retention.check.interval.ms",
                                        c.offsets_retention_check_interval_ms));
  return c;
}

GroupCoordinator::GroupCoordinator(asio::io_context* io, GroupCoordinatorConfig config,
                                   std::filesystem::path log_dir)
    : io_(io), config_(config), store_(std::move(log_dir), config.offsets_topic_partitions) {}

GroupCoordinator::~GroupCoordinator() = default;

absl::Status GroupCoordinator::Load(bool clean_shutdown) {
  absl::Status s = store_.Load(clean_shutdown, [this](const GroupRecord& r) { Apply(r); });
  if (!s.ok()) return s;
  // Restored members get a full session to heartbeat again.
  for (auto& [id, g] : groups_) {
    for (auto& [mid, m] : g->members) ScheduleHeartbeat(*g, *m);
  }
  ScheduleOffsetsCleanup();
  return absl::OkStatus();
}

absl::Status GroupCoordinator::Close() {
  cleanup_timer_.reset();
  for (auto& [id, g] : groups_) {
    g->join_timer.reset();
    g->pending.clear();
    for (auto& [mid, m] : g->members) m->heartbeat_timer.reset();
  }
  return store_.Close();
}

void GroupCoordinator::Apply(const GroupRecord& r) {
  if (r.txn_marker) return ApplyTxnMarker(r.store_partition, r.producer_id, *r.txn_marker);
  if (r.producer_id >= 0 && !r.topic.empty()) {
    // A transactional commit: pending until its transaction's marker.
    auto& pending = pending_txn_offsets_[r.producer_id][r.group];
    if (r.offset) pending[{r.topic, r.partition}] = *r.offset;
    return;
  }
  if (!r.topic.empty()) {
    if (r.offset) {
      GetOrCreateGroup(r.group).offsets[{r.topic, r.partition}] = *r.offset;
    } else if (Group* g = FindGroup(r.group)) {
      g->offsets.erase({r.topic, r.partition});
    }
    return;
  }
  if (!r.metadata) {
    if (Group* g = FindGroup(r.group)) {
      // A deleted group: its offsets were tombstoned before it.
      if (g->offsets.empty()) groups_.erase(r.group);
    }
    return;
  }
  Group& g = GetOrCreateGroup(r.group);
  const StoredGroup& s = *r.metadata;
  g.members.clear();
  g.static_members.clear();
  g.generation = s.generation;
  g.protocol_type =
      s.protocol_type.empty() ? std::nullopt : std::optional<std::string>(s.protocol_type);
  g.protocol = s.protocol;
  g.leader = s.leader;
  for (const StoredMember& sm : s.members) {
    auto m = std::make_unique<Member>();
    m->id = sm.member_id;
    m->instance_id = sm.group_instance_id;
    m->client_id = sm.client_id;
    m->client_host = sm.client_host;
    m->rebalance_timeout_ms = sm.rebalance_timeout_ms;
    m->session_timeout_ms = sm.session_timeout_ms;
    m->protocol_type = s.protocol_type;
    if (s.protocol) m->protocols.push_back({*s.protocol, sm.subscription});
    m->assignment = sm.assignment;
    if (m->instance_id) g.static_members[*m->instance_id] = m->id;
    g.members[m->id] = std::move(m);
  }
  g.state = g.members.empty() ? GroupState::kEmpty : GroupState::kStable;
  // An Empty group's retention clock keeps running across restarts.
  g.empty_since_ms = g.members.empty() ? s.state_timestamp : -1;
}

void GroupCoordinator::StoreGroup(Group& g) {
  StoredGroup s;
  s.protocol_type = g.protocol_type.value_or("");
  s.generation = g.generation;
  s.protocol = g.protocol;
  s.leader = g.leader;
  s.state_timestamp =
      g.Is(GroupState::kEmpty) && g.empty_since_ms >= 0 ? g.empty_since_ms : NowMs();
  for (const auto& [id, m] : g.members) {
    StoredMember sm;
    sm.member_id = m->id;
    sm.group_instance_id = m->instance_id;
    sm.client_id = m->client_id;
    sm.client_host = m->client_host;
    sm.rebalance_timeout_ms = m->rebalance_timeout_ms;
    sm.session_timeout_ms = m->session_timeout_ms;
    if (g.protocol) {
      if (const std::string* md = m->Metadata(*g.protocol)) sm.subscription = *md;
    }
    sm.assignment = m->assignment;
    s.members.push_back(std::move(sm));
  }
  // Membership is rebuilt by rejoining if this write is lost; offsets are what must
  // survive, and those are acknowledged only after their own append.
  (void)store_.AppendGroup(g.id, s);
}

GroupCoordinator::Group* GroupCoordinator::FindGroup(const std::string& group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : it->second.get();
}

GroupCoordinator::Group& GroupCoordinator::GetOrCreateGroup(const std::string& group_id) {
  auto& slot = groups_[group_id];
  if (!slot) {
    slot = std::make_unique<Group>();
    slot->id = group_id;
  }
  return *slot;
}

GroupState GroupCoordinator::StateOf(const std::string& group_id) const {
  const Group* g = FindGroup(group_id);
  return g ? g->state : GroupState::kDead;
}

int32_t GroupCoordinator::GenerationOf(const std::string& group_id) const {
  const Group* g = FindGroup(group_id);
  return g ? g->generation : -1;
}

// ---- Join ----------------------------------------------------------------------------

void GroupCoordinator::JoinGroup(const JoinGroupParams& p, JoinCallback cb) {
  auto fail = [&](ErrorCode e) {
    JoinGroupResult r;
    r.error = e;
    r.member_id = p.member_id;
    cb(r);
  };
  if (p.group_id.empty()) return fail(ErrorCode::kInvalidGroupId);
  if (p.session_timeout_ms < config_.min_session_timeout_ms ||
      p.session_timeout_ms > config_.max_session_timeout_ms) {
    return fail(ErrorCode::kInvalidSessionTimeout);
  }
  bool unknown_member = p.member_id.empty();
  Group* g = FindGroup(p.group_id);
  if (g == nullptr) {
    if (!unknown_member) return fail(ErrorCode::kUnknownMemberId);
    g = &GetOrCreateGroup(p.group_id);
  }
  if (static_cast<int64_t>(g->members.size()) >= config_.max_group_size &&
      (unknown_member || !g->Has(p.member_id)) && !g->pending.count(p.member_id)) {
    return fail(ErrorCode::kGroupMaxSizeReached);
  }
  if (unknown_member) {
    NewMemberJoin(*g, p, std::move(cb));
  } else {
    CurrentMemberJoin(*g, p, std::move(cb));
  }
}

bool GroupCoordinator::SupportsProtocols(
    const Group& g, const std::string& type,
    const std::vector<std::pair<std::string, std::string>>& protocols) const {
  if (g.members.empty()) return !type.empty() && !protocols.empty();
  if (!g.protocol_type || *g.protocol_type != type) return false;
  for (const auto& [name, md] : protocols) {
    bool all = true;
    for (const auto& [id, m] : g.members) all = all && m->Metadata(name) != nullptr;
    if (all) return true;
  }
  return false;
}

bool GroupCoordinator::IsStaticMemberFenced(const Group& g, const std::string& member_id,
                                            const std::optional<std::string>& instance_id) const {
  if (!instance_id) return false;
  auto it = g.static_members.find(*instance_id);
  return it != g.static_members.end() && it->second != member_id;
}

void GroupCoordinator::NewMemberJoin(Group& g, const JoinGroupParams& p, JoinCallback cb) {
  JoinGroupResult r;
  if (g.Is(GroupState::kDead)) {
    r.error = ErrorCode::kCoordinatorNotAvailable;
    return cb(r);
  }
  if (!SupportsProtocols(g, p.protocol_type, p.protocols)) {
    r.error = ErrorCode::kInconsistentGroupProtocol;
    return cb(r);
  }
  std::string new_id = p.client_id + "-" + RandomUuidString();
  if (p.group_instance_id) return StaticMemberJoin(g, p, new_id, std::move(cb));
  if (p.require_known_member_id) {
    // KIP-394: the client rejoins with this id; until then it is pending.
    SchedulePendingExpiry(g, new_id, p.session_timeout_ms);
    r.error = ErrorCode::kMemberIdRequired;
    r.member_id = new_id;
    return cb(r);
  }
  AddMemberAndRebalance(g, p, new_id, std::move(cb));
}

void GroupCoordinator::StaticMemberJoin(Group& g, const JoinGroupParams& p,
                                        const std::string& new_id, JoinCallback cb) {
  auto it = g.static_members.find(*p.group_instance_id);
  if (it == g.static_members.end() || !g.Has(it->second)) {
    return AddMemberAndRebalance(g, p, new_id, std::move(cb));
  }
  // Replace the old member id; whoever still uses it is fenced.
  std::string old_id = it->second;
  auto node = g.members.extract(old_id);
  std::unique_ptr<Member> m = std::move(node.mapped());
  FailPendingRequests(*m, ErrorCode::kFencedInstanceId);
  m->id = new_id;
  m->client_id = p.client_id;
  m->client_host = p.client_host;
  m->session_timeout_ms = p.session_timeout_ms;
  m->rebalance_timeout_ms = p.rebalance_timeout_ms;
  bool leader = g.leader == old_id;
  if (leader) g.leader = new_id;
  it->second = new_id;
  Member& ref = *m;
  g.members[new_id] = std::move(m);
  ScheduleHeartbeat(g, ref);

  auto old_protocols = ref.protocols;
  ref.protocols = p.protocols;
  ref.protocol_type = p.protocol_type;
  switch (g.state) {
    case GroupState::kStable:
      if (g.protocol && SelectProtocol(g) == *g.protocol) {
        StoreGroup(g);
        JoinGroupResult r = CurrentGenerationResult(g, ref, leader);
        r.skip_assignment = leader;
        return cb(r);
      }
      ref.protocols = old_protocols;
      return UpdateMemberAndRebalance(g, ref, p, std::move(cb));
    case GroupState::kCompletingRebalance: {
      JoinGroupResult r = CurrentGenerationResult(g, ref, leader);
      return cb(r);
    }
    case GroupState::kPreparingRebalance:
      ref.awaiting_join = std::move(cb);
      return TryCompleteJoin(g);
    default:
      return UpdateMemberAndRebalance(g, ref, p, std::move(cb));
  }
}

void GroupCoordinator::CurrentMemberJoin(Group& g, const JoinGroupParams& p, JoinCallback cb) {
  JoinGroupResult r;
  r.member_id = p.member_id;
  if (g.Is(GroupState::kDead)) {
    r.error = ErrorCode::kCoordinatorNotAvailable;
    return cb(r);
  }
  if (!SupportsProtocols(g, p.protocol_type, p.protocols)) {
    r.error = ErrorCode::kInconsistentGroupProtocol;
    return cb(r);
  }
  if (g.pending.count(p.member_id)) {
    g.pending.erase(p.member_id);
    return AddMemberAndRebalance(g, p, p.member_id, std::move(cb));
  }
  if (IsStaticMemberFenced(g, p.member_id, p.group_instance_id)) {
    r.error = ErrorCode::kFencedInstanceId;
    return cb(r);
  }
  auto it = g.members.find(p.member_id);
  if (it == g.members.end()) {
    r.error = ErrorCode::kUnknownMemberId;
    return cb(r);
  }
  Member& m = *it->second;
  switch (g.state) {
    case GroupState::kPreparingRebalance:
      return UpdateMemberAndRebalance(g, m, p, std::move(cb));
    case GroupState::kCompletingRebalance:
      if (m.protocols == p.protocols) {
        return cb(CurrentGenerationResult(g, m, g.leader == m.id));
      }
      return UpdateMemberAndRebalance(g, m, p, std::move(cb));
    case GroupState::kStable:
      if (g.leader == m.id || m.protocols != p.protocols) {
        return UpdateMemberAndRebalance(g, m, p, std::move(cb));
      }
      ScheduleHeartbeat(g, m);
      return cb(CurrentGenerationResult(g, m, false));
    default:
      r.error = ErrorCode::kUnknownMemberId;
      return cb(r);
  }
}

JoinGroupResult GroupCoordinator::CurrentGenerationResult(const Group& g, const Member& m,
                                                          bool with_members) const {
  JoinGroupResult r;
  r.generation_id = g.generation;
  r.protocol_type = g.protocol_type;
  r.protocol_name = g.protocol;
  r.leader = g.leader.value_or("");
  r.member_id = m.id;
  if (with_members && g.protocol) {
    for (const auto& [id, other] : g.members) {
      const std::string* md = other->Metadata(*g.protocol);
      r.members.push_back({id, other->instance_id, md ? *md : std::string()});
    }
  }
  return r;
}

void GroupCoordinator::AddMemberAndRebalance(Group& g, const JoinGroupParams& p,
                                             const std::string& member_id, JoinCallback cb) {
  auto m = std::make_unique<Member>();
  m->id = member_id;
  m->instance_id = p.group_instance_id;
  m->client_id = p.client_id;
  m->client_host = p.client_host;
  m->session_timeout_ms = p.session_timeout_ms;
  m->rebalance_timeout_ms = p.rebalance_timeout_ms;
  m->protocol_type = p.protocol_type;
  m->protocols = p.protocols;
  m->awaiting_join = std::move(cb);
  if (g.Is(GroupState::kPreparingRebalance) && g.generation == 0) m->is_new = true;
  if (g.members.empty()) g.protocol_type = p.protocol_type;
  if (!g.leader) g.leader = member_id;
  if (m->instance_id) g.static_members[*m->instance_id] = member_id;
  g.new_member_added = true;
  Member& ref = *m;
  g.members[member_id] = std::move(m);
  ScheduleHeartbeat(g, ref);
  MaybePrepareRebalance(g);
  TryCompleteJoin(g);
}

void GroupCoordinator::UpdateMemberAndRebalance(Group& g, Member& m, const JoinGroupParams& p,
                                                JoinCallback cb) {
  m.protocols = p.protocols;
  m.protocol_type = p.protocol_type;
  m.rebalance_timeout_ms = p.rebalance_timeout_ms;
  m.session_timeout_ms = p.session_timeout_ms;
  if (m.awaiting_join) {
    // A duplicate join from the same member supersedes the earlier one.
    JoinGroupResult r;
    r.error = ErrorCode::kUnknownMemberId;
    r.member_id = m.id;
    std::exchange(m.awaiting_join, nullptr)(r);
  }
  m.awaiting_join = std::move(cb);
  ScheduleHeartbeat(g, m);
  MaybePrepareRebalance(g);
  TryCompleteJoin(g);
}

void GroupCoordinator::MaybePrepareRebalance(Group& g) {
  if (g.Is(GroupState::kStable) || g.Is(GroupState::kCompletingRebalance) ||
      g.Is(GroupState::kEmpty)) {
    PrepareRebalance(g);
  }
}

void GroupCoordinator::PrepareRebalance(Group& g) {
  if (g.Is(GroupState::kCompletingRebalance))
    PropagateSyncError(g, ErrorCode::kRebalanceInProgress);
  bool was_empty = g.Is(GroupState::kEmpty);
  g.state = GroupState::kPreparingRebalance;
  ++g.join_round;
  if (was_empty) {
    g.initial_delay = true;
    g.new_member_added = false;
    int32_t delay = std::min(config_.initial_rebalance_delay_ms, g.MaxRebalanceTimeout());
    g.initial_delay_remaining_ms = std::max(0, g.MaxRebalanceTimeout() - delay);
    ScheduleJoinTimer(g, delay);
  } else {
    g.initial_delay = false;
    ScheduleJoinTimer(g, g.MaxRebalanceTimeout());
    TryCompleteJoin(g);  // e.g. the last member left: nobody to wait for
  }
}

void GroupCoordinator::TryCompleteJoin(Group& g) {
  if (g.Is(GroupState::kPreparingRebalance) && !g.initial_delay && g.AllMembersJoined()) {
    CompleteJoin(g);
  }
}

void GroupCoordinator::ScheduleJoinTimer(Group& g, int32_t delay_ms) {
  if (!g.join_timer) g.join_timer = std::make_unique<asio::steady_timer>(*io_);
  g.join_timer->expires_after(std::chrono::milliseconds(delay_ms));
  uint64_t round = g.join_round;
  std::string id = g.id;
  g.join_timer->async_wait([this, id, round](const asio::error_code& ec) {
    if (ec != asio::error::operation_aborted) OnJoinTimer(id, round);
  });
}

void GroupCoordinator::OnJoinTimer(const std::string& group_id, uint64_t round) {
  Group* g = FindGroup(group_id);
  if (g == nullptr || g->join_round != round || !g->Is(GroupState::kPreparingRebalance)) return;
  if (g->initial_delay && g->new_member_added && g->initial_delay_remaining_ms > 0) {
    // Kafka's InitialDelayedJoin: keep waiting while new members arrive.
    g->new_member_added = false;
    int32_t delay = std::min(config_.initial_rebalance_delay_ms, g->initial_delay_remaining_ms);
    g->initial_delay_remaining_ms -= delay;
    ++g->join_round;
    return ScheduleJoinTimer(*g, delay);
  }
  g->initial_delay = false;
  CompleteJoin(*g);
}

std::string GroupCoordinator::SelectProtocol(const Group& g) const {
  // Candidates: protocols every member supports, in the order of the first member's
  // preference. Each member votes for its most preferred candidate; most votes wins.
  std::vector<std::string> candidates;
  if (g.members.empty()) return "";
  for (const auto& [name, md] : g.members.begin()->second->protocols) {
    bool all = true;
    for (const auto& [id, m] : g.members) all = all && m->Metadata(name) != nullptr;
    if (all) candidates.push_back(name);
  }
  std::map<std::string, int> votes;
  for (const auto& [id, m] : g.members) {
    for (const auto& [name, md] : m->protocols) {
      if (std::find(candidates.begin(), candidates.end(), name) != candidates.end()) {
        ++votes[name];
        break;
      }
    }
  }
  std::string best;
  int best_votes = -1;
  for (const std::string& c : candidates) {
    if (votes[c] > best_votes) best = c, best_votes = votes[c];
  }
  return best;
}

void GroupCoordinator::CompleteJoin(Group& g) {
  if (g.join_timer) g.join_timer->cancel();
  ++g.join_round;
  // Dynamic members that did not rejoin in time are removed; static ones stay until
  // their session expires (Kafka's notYetRejoinedDynamicMembers).
  std::vector<std::string> gone;
  for (const auto& [id, m] : g.members) {
    if (!m->awaiting_join && !m->instance_id) gone.push_back(id);
  }
  for (const std::string& id : gone) RemoveMember(g, id);
  g.pending.clear();
  bool any_joined = g.AwaitingJoin() > 0;
  if (!any_joined) {
    gone.clear();
    for (const auto& [id, m] : g.members) gone.push_back(id);
    for (const std::string& id : gone) RemoveMember(g, id);
  }
  if (!g.leader || !g.Has(*g.leader) || !g.members.at(*g.leader)->awaiting_join) {
    g.leader.reset();
    for (const auto& [id, m] : g.members) {
      if (m->awaiting_join) {
        g.leader = id;
        break;
      }
    }
  }
  ++g.generation;
  if (g.members.empty()) {
    g.state = GroupState::kEmpty;
    g.empty_since_ms = NowMs();
    g.protocol.reset();
    g.leader.reset();
    StoreGroup(g);
    return;
  }
  g.protocol = SelectProtocol(g);
  g.state = GroupState::kCompletingRebalance;
  for (auto& [id, m] : g.members) {
    if (!m->awaiting_join) continue;
    JoinGroupResult r = CurrentGenerationResult(g, *m, g.leader == id);
    m->is_new = false;
    auto cb = std::exchange(m->awaiting_join, nullptr);
    ScheduleHeartbeat(g, *m);
    cb(r);
  }
}

// ---- Sync ----------------------------------------------------------------------------

void GroupCoordinator::SyncGroup(const SyncGroupParams& p, SyncCallback cb) {
  SyncGroupResult r;
  auto fail = [&](ErrorCode e) {
    r.error = e;
    cb(r);
  };
  Group* g = FindGroup(p.group_id);
  if (p.group_id.empty()) return fail(ErrorCode::kInvalidGroupId);
  if (g == nullptr) return fail(ErrorCode::kUnknownMemberId);
  if (g->Is(GroupState::kDead)) return fail(ErrorCode::kCoordinatorNotAvailable);
  if (IsStaticMemberFenced(*g, p.member_id, p.group_instance_id)) {
    return fail(ErrorCode::kFencedInstanceId);
  }
  auto it = g->members.find(p.member_id);
  if (it == g->members.end()) return fail(ErrorCode::kUnknownMemberId);
  if (p.generation_id != g->generation) return fail(ErrorCode::kIllegalGeneration);
  if ((p.protocol_type && *p.protocol_type != g->protocol_type.value_or("")) ||
      (p.protocol_name && *p.protocol_name != g->protocol.value_or(""))) {
    return fail(ErrorCode::kInconsistentGroupProtocol);
  }
  Member& m = *it->second;
  r.protocol_type = g->protocol_type;
  r.protocol_name = g->protocol;
  switch (g->state) {
    case GroupState::kPreparingRebalance:
      return fail(ErrorCode::kRebalanceInProgress);
    case GroupState::kStable:
      ScheduleHeartbeat(*g, m);
      r.assignment = m.assignment;
      return cb(r);
    case GroupState::kCompletingRebalance:
      break;
    default:
      return fail(ErrorCode::kUnknownMemberId);
  }
  ScheduleHeartbeat(*g, m);
  if (m.awaiting_sync) {
    SyncGroupResult dup;
    dup.error = ErrorCode::kUnknownMemberId;
    std::exchange(m.awaiting_sync, nullptr)(dup);
  }
  m.awaiting_sync = std::move(cb);
  if (g->leader != m.id) return;
  // The leader's assignment completes the round; members it left out get nothing.
  for (auto& [id, member] : g->members) member->assignment.clear();
  for (const auto& [id, assignment] : p.assignments) {
    if (auto mit = g->members.find(id); mit != g->members.end()) {
      mit->second->assignment = assignment;
    }
  }
  StoreGroup(*g);
  g->state = GroupState::kStable;
  for (auto& [id, member] : g->members) {
    if (!member->awaiting_sync) continue;
    SyncGroupResult ok;
    ok.protocol_type = g->protocol_type;
    ok.protocol_name = g->protocol;
    ok.assignment = member->assignment;
    std::exchange(member->awaiting_sync, nullptr)(ok);
  }
}

void GroupCoordinator::PropagateSyncError(Group& g, ErrorCode error) {
  for (auto& [id, m] : g.members) {
    m->assignment.clear();
    if (!m->awaiting_sync) continue;
    SyncGroupResult r;
    r.error = error;
    std::exchange(m->awaiting_sync, nullptr)(r);
  }
}

// ---- Heartbeat and expiry ------------------------------------------------------------

ErrorCode GroupCoordinator::Heartbeat(const std::string& group_id, const std::string& member_id,
                                      const std::optional<std::string>& instance_id,
                                      int32_t generation_id) {
  Group* g = FindGroup(group_id);
  if (group_id.empty()) return ErrorCode::kInvalidGroupId;
  if (g == nullptr) return ErrorCode::kUnknownMemberId;
  if (g->Is(GroupState::kDead)) return ErrorCode::kCoordinatorNotAvailable;
  if (g->Is(GroupState::kEmpty)) return ErrorCode::kUnknownMemberId;
  if (IsStaticMemberFenced(*g, member_id, instance_id)) return ErrorCode::kFencedInstanceId;
  auto it = g->members.find(member_id);
  if (it == g->members.end()) return ErrorCode::kUnknownMemberId;
  if (generation_id != g->generation) return ErrorCode::kIllegalGeneration;
  ScheduleHeartbeat(*g, *it->second);
  return g->Is(GroupState::kPreparingRebalance) ? ErrorCode::kRebalanceInProgress
                                                : ErrorCode::kNone;
}

void GroupCoordinator::ScheduleHeartbeat(Group& g, Member& m) {
  if (!m.heartbeat_timer) m.heartbeat_timer = std::make_unique<asio::steady_timer>(*io_);
  m.heartbeat_timer->expires_after(std::chrono::milliseconds(m.session_timeout_ms));
  uint64_t epoch = ++m.heartbeat_epoch;
  std::string gid = g.id, mid = m.id;
  m.heartbeat_timer->async_wait([this, gid, mid, epoch](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    Group* g = FindGroup(gid);
    if (g == nullptr) return;
    auto it = g->members.find(mid);
    if (it == g->members.end() || it->second->heartbeat_epoch != epoch) return;
    OnHeartbeatTimer(gid, mid);
  });
}

void GroupCoordinator::SchedulePendingExpiry(Group& g, const std::string& member_id,
                                             int32_t session_timeout_ms) {
  auto timer = std::make_unique<asio::steady_timer>(*io_);
  timer->expires_after(std::chrono::milliseconds(session_timeout_ms));
  asio::steady_timer* raw = timer.get();
  std::string gid = g.id;
  raw->async_wait([this, gid, member_id, raw](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    Group* g = FindGroup(gid);
    if (g == nullptr) return;
    auto it = g->pending.find(member_id);
    if (it == g->pending.end() || it->second.get() != raw) return;
    g->pending.erase(it);
    TryCompleteJoin(*g);
  });
  g.pending[member_id] = std::move(timer);
}

void GroupCoordinator::OnHeartbeatTimer(const std::string& group_id, const std::string& member_id) {
  Group* g = FindGroup(group_id);
  if (g == nullptr) return;
  auto it = g->members.find(member_id);
  if (it == g->members.end()) return;
  Member& m = *it->second;
  // A member parked in JoinGroup or SyncGroup is alive (Kafka's shouldKeepAlive).
  if (m.awaiting_join || m.awaiting_sync) return ScheduleHeartbeat(*g, m);
  RemoveMemberAndUpdateGroup(*g, member_id);
}

void GroupCoordinator::ExpireMemberSession(const std::string& group_id,
                                           const std::string& member_id) {
  OnHeartbeatTimer(group_id, member_id);
}

void GroupCoordinator::RemoveMember(Group& g, const std::string& member_id) {
  auto it = g.members.find(member_id);
  if (it == g.members.end()) return;
  std::unique_ptr<Member> m = std::move(it->second);
  g.members.erase(it);
  if (m->instance_id) {
    auto sit = g.static_members.find(*m->instance_id);
    if (sit != g.static_members.end() && sit->second == member_id) g.static_members.erase(sit);
  }
  if (g.leader == member_id) {
    g.leader.reset();
    if (!g.members.empty()) g.leader = g.members.begin()->first;
  }
  FailPendingRequests(*m, ErrorCode::kUnknownMemberId);
}

void GroupCoordinator::FailPendingRequests(Member& m, ErrorCode error) {
  if (m.awaiting_join) {
    JoinGroupResult r;
    r.error = error;
    r.member_id = m.id;
    std::exchange(m.awaiting_join, nullptr)(r);
  }
  if (m.awaiting_sync) {
    SyncGroupResult r;
    r.error = error;
    std::exchange(m.awaiting_sync, nullptr)(r);
  }
}

void GroupCoordinator::RemoveMemberAndUpdateGroup(Group& g, const std::string& member_id) {
  RemoveMember(g, member_id);
  switch (g.state) {
    case GroupState::kStable:
    case GroupState::kCompletingRebalance:
      return MaybePrepareRebalance(g);
    case GroupState::kPreparingRebalance:
      return TryCompleteJoin(g);
    default:
      return;
  }
}

// ---- Leave ---------------------------------------------------------------------------

std::pair<ErrorCode, std::vector<ErrorCode>> GroupCoordinator::LeaveGroup(
    const std::string& group_id, const std::vector<LeaveGroupMember>& members) {
  std::vector<ErrorCode> errors;
  if (group_id.empty()) return {ErrorCode::kInvalidGroupId, errors};
  Group* g = FindGroup(group_id);
  if (g == nullptr) {
    errors.assign(members.size(), ErrorCode::kUnknownMemberId);
    return {ErrorCode::kNone, errors};
  }
  if (g->Is(GroupState::kDead)) return {ErrorCode::kCoordinatorNotAvailable, errors};
  for (const LeaveGroupMember& lm : members) {
    if (lm.group_instance_id) {
      auto it = g->static_members.find(*lm.group_instance_id);
      if (it == g->static_members.end()) {
        errors.push_back(ErrorCode::kUnknownMemberId);
      } else if (!lm.member_id.empty() && it->second != lm.member_id) {
        errors.push_back(ErrorCode::kFencedInstanceId);
      } else {
        RemoveMemberAndUpdateGroup(*g, it->second);
        errors.push_back(ErrorCode::kNone);
      }
    } else if (g->pending.count(lm.member_id)) {
      g->pending.erase(lm.member_id);
      TryCompleteJoin(*g);
      errors.push_back(ErrorCode::kNone);
    } else if (!g->Has(lm.member_id)) {
      errors.push_back(ErrorCode::kUnknownMemberId);
    } else {
      RemoveMemberAndUpdateGroup(*g, lm.member_id);
      errors.push_back(ErrorCode::kNone);
    }
  }
  return {ErrorCode::kNone, errors};
}

// ---- Offsets -------------------------------------------------------------------------

ErrorCode GroupCoordinator::ValidateOffsetCommit(const std::string& group_id, int32_t generation_id,
                                                 const std::string& member_id,
                                                 const std::optional<std::string>& instance_id,
                                                 int16_t api_version, bool transactional,
                                                 Group** group) {
  if (group_id.empty()) return ErrorCode::kInvalidGroupId;
  Group* g = FindGroup(group_id);
  if (g == nullptr) {
    // Only "simple" commits (no generation) may create a group. Kafka answers the
    // others GROUP_ID_NOT_FOUND from OffsetCommit v9, ILLEGAL_GENERATION before (and
    // for TxnOffsetCommit).
    if (generation_id >= 0) {
      return api_version >= 9 ? ErrorCode::kGroupIdNotFound : ErrorCode::kIllegalGeneration;
    }
    g = &GetOrCreateGroup(group_id);
  }
  if (g->Is(GroupState::kDead)) return ErrorCode::kCoordinatorNotAvailable;
  if (IsStaticMemberFenced(*g, member_id, instance_id)) return ErrorCode::kFencedInstanceId;
  bool simple = generation_id < 0 && member_id.empty();
  if (simple) {
    // A transactional commit without a generation (TxnOffsetCommit v0-2, or a producer
    // outside the group) is accepted in any state, as Kafka's validateOffsetCommit.
    if (!transactional && !g->Is(GroupState::kEmpty)) return ErrorCode::kUnknownMemberId;
  } else {
    auto it = g->members.find(member_id);
    if (it == g->members.end()) return ErrorCode::kUnknownMemberId;
    if (generation_id != g->generation) return ErrorCode::kIllegalGeneration;
    // A transaction may commit while the group completes a rebalance (Kafka's rule).
    if (!transactional && g->Is(GroupState::kCompletingRebalance)) {
      return ErrorCode::kRebalanceInProgress;
    }
    ScheduleHeartbeat(*g, *it->second);
  }
  *group = g;
  return ErrorCode::kNone;
}

GroupCoordinator::OffsetWrites GroupCoordinator::StampOffsets(
    const std::vector<TopicPartitionOffset>& offsets, std::vector<ErrorCode>* errors) const {
  OffsetWrites writes;
  // Kafka stamps commits with the broker's clock (OffsetCommit v2+); retention of
  // standalone commits is measured from it.
  int64_t now = NowMs();
  for (const TopicPartitionOffset& o : offsets) {
    if (static_cast<int64_t>(o.offset.metadata.size()) > config_.offset_metadata_max_bytes) {
      errors->push_back(ErrorCode::kOffsetMetadataTooLarge);
    } else {
      errors->push_back(ErrorCode::kNone);
      CommittedOffset stamped = o.offset;
      stamped.commit_timestamp = now;
      writes.push_back({{o.topic, o.partition}, std::move(stamped)});
    }
  }
  return writes;
}

std::vector<ErrorCode> GroupCoordinator::CommitOffsets(
    const std::string& group_id, int32_t generation_id, const std::string& member_id,
    const std::optional<std::string>& instance_id, int16_t api_version,
    const std::vector<TopicPartitionOffset>& offsets) {
  auto all = [&](ErrorCode e) { return std::vector<ErrorCode>(offsets.size(), e); };
  Group* g = nullptr;
  ErrorCode error = ValidateOffsetCommit(group_id, generation_id, member_id, instance_id,
                                         api_version, /*transactional=*/false, &g);
  if (error != ErrorCode::kNone) return all(error);
  std::vector<ErrorCode> errors;
  OffsetWrites writes = StampOffsets(offsets, &errors);
  if (absl::Status s = store_.AppendOffsets(group_id, writes); !s.ok()) {
    return all(ErrorCode::kUnknownServerError);
  }
  for (auto& [tp, value] : writes) g->offsets[tp] = *value;
  return errors;
}

std::vector<ErrorCode> GroupCoordinator::CommitTxnOffsets(
    const std::string& group_id, int64_t producer_id, int16_t producer_epoch, int32_t generation_id,
    const std::string& member_id, const std::optional<std::string>& instance_id,
    const std::vector<TopicPartitionOffset>& offsets) {
  auto all = [&](ErrorCode e) { return std::vector<ErrorCode>(offsets.size(), e); };
  Group* g = nullptr;
  ErrorCode error = ValidateOffsetCommit(group_id, generation_id, member_id, instance_id,
                                         /*api_version=*/0, /*transactional=*/true, &g);
  if (error != ErrorCode::kNone) return all(error);
  std::vector<ErrorCode> errors;
  OffsetWrites writes = StampOffsets(offsets, &errors);
  if (absl::Status s = store_.AppendTxnOffsets(group_id, producer_id, producer_epoch, writes);
      !s.ok()) {
    std::optional<storage::ProducerError> e = storage::ProducerErrorOf(s);
    return all(e && *e == storage::ProducerError::kInvalidProducerEpoch
                   ? ErrorCode::kInvalidProducerEpoch
                   : ErrorCode::kUnknownServerError);
  }
  auto& pending = pending_txn_offsets_[producer_id][group_id];
  for (auto& [tp, value] : writes) pending[tp] = *value;
  return errors;
}

ErrorCode GroupCoordinator::CompleteTxn(int32_t offsets_partition, int64_t producer_id,
                                        int16_t producer_epoch, int32_t coordinator_epoch,
                                        bool commit) {
  if (absl::Status s = store_.AppendTxnMarker(offsets_partition, producer_id, producer_epoch,
                                              coordinator_epoch, commit);
      !s.ok()) {
    std::optional<storage::ProducerError> e = storage::ProducerErrorOf(s);
    if (!e) return ErrorCode::kKafkaStorageError;
    return *e == storage::ProducerError::kTransactionCoordinatorFenced
               ? ErrorCode::kTransactionCoordinatorFenced
               : ErrorCode::kInvalidProducerEpoch;
  }
  ApplyTxnMarker(offsets_partition, producer_id, commit);
  return ErrorCode::kNone;
}

void GroupCoordinator::ApplyTxnMarker(int32_t offsets_partition, int64_t producer_id, bool commit) {
  auto producer = pending_txn_offsets_.find(producer_id);
  if (producer == pending_txn_offsets_.end()) return;
  auto& by_group = producer->second;
  for (auto it = by_group.begin(); it != by_group.end();) {
    if (store_.PartitionFor(it->first) != offsets_partition) {
      ++it;
      continue;
    }
    if (commit) {
      Group& g = GetOrCreateGroup(it->first);
      for (auto& [tp, value] : it->second) g.offsets[tp] = value;
    }
    it = by_group.erase(it);
  }
  if (by_group.empty()) pending_txn_offsets_.erase(producer);
}

bool GroupCoordinator::HasPendingTxnOffsets(
    const std::string& group_id,
    const std::optional<std::pair<std::string, int32_t>>& partition) const {
  for (const auto& [producer_id, by_group] : pending_txn_offsets_) {
    auto it = by_group.find(group_id);
    if (it == by_group.end()) continue;
    if (!partition || it->second.count(*partition)) return true;
  }
  return false;
}

std::optional<CommittedOffset> GroupCoordinator::FetchOffset(const std::string& group_id,
                                                             const std::string& topic,
                                                             int32_t partition) const {
  const Group* g = FindGroup(group_id);
  if (g == nullptr) return std::nullopt;
  auto it = g->offsets.find({topic, partition});
  if (it == g->offsets.end()) return std::nullopt;
  return it->second;
}

std::vector<TopicPartitionOffset> GroupCoordinator::FetchAllOffsets(
    const std::string& group_id) const {
  std::vector<TopicPartitionOffset> out;
  const Group* g = FindGroup(group_id);
  if (g == nullptr) return out;
  for (const auto& [tp, o] : g->offsets) out.push_back({tp.first, tp.second, o});
  return out;
}

ErrorCode GroupCoordinator::DeleteOffsets(
    const std::string& group_id, const std::vector<std::pair<std::string, int32_t>>& partitions,
    std::vector<ErrorCode>* partition_errors) {
  if (group_id.empty()) return ErrorCode::kInvalidGroupId;
  Group* g = FindGroup(group_id);
  if (g == nullptr || g->Is(GroupState::kDead)) return ErrorCode::kGroupIdNotFound;
  std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>> writes;
  partition_errors->clear();
  for (const auto& tp : partitions) {
    if (IsSubscribedToTopic(*g, tp.first)) {
      partition_errors->push_back(ErrorCode::kGroupSubscribedToTopic);
      continue;
    }
    partition_errors->push_back(ErrorCode::kNone);
    if (g->offsets.count(tp)) writes.push_back({tp, std::nullopt});
  }
  if (absl::Status s = store_.AppendOffsets(group_id, writes); !s.ok()) {
    return ErrorCode::kUnknownServerError;
  }
  for (auto& [tp, v] : writes) g->offsets.erase(tp);
  return ErrorCode::kNone;
}

bool GroupCoordinator::IsSubscribedToTopic(const Group& g, const std::string& topic) const {
  // Kafka's ClassicGroup.isSubscribedToTopic: an empty group is subscribed to nothing; a
  // "consumer" group to the union of its members' ConsumerProtocolSubscription topics
  // (int16 version, int32 count, int16-length strings, ...); any other group, or one
  // whose subscriptions do not parse, counts as subscribed to every topic.
  if (g.members.empty()) return false;
  if (g.protocol_type != "consumer" || !g.protocol) return true;
  for (const auto& [id, m] : g.members) {
    const std::string* md = m->Metadata(*g.protocol);
    if (md == nullptr) return true;
    protocol::Reader r(*md);
    r.Int16();
    int32_t n = r.Int32();
    for (int32_t i = 0; i < n && r.ok(); ++i) {
      if (r.String(false) == topic && r.ok()) return true;
    }
    if (!r.ok() || n < 0) return true;
  }
  return false;
}

// ---- Offset retention ----------------------------------------------------------------

void GroupCoordinator::ScheduleOffsetsCleanup() {
  if (!cleanup_timer_) cleanup_timer_ = std::make_unique<asio::steady_timer>(*io_);
  cleanup_timer_->expires_after(
      std::chrono::milliseconds(config_.offsets_retention_check_interval_ms));
  cleanup_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    CleanupExpiredOffsets(NowMs());
    ScheduleOffsetsCleanup();
  });
}

void GroupCoordinator::CleanupExpiredOffsets(int64_t now_ms) {
  const int64_t retention_ms = int64_t{config_.offsets_retention_minutes} * 60 * 1000;
  std::vector<std::string> dead;
  for (auto& [id, g] : groups_) {
    // Kafka's ClassicGroup.offsetExpirationCondition: an Empty group's offsets count
    // from when it became Empty (standalone commits, without a protocol type, each from
    // its commit time); a Stable "consumer" group's offsets of topics no member
    // subscribes to count from their commit time; other groups keep everything.
    bool empty = g->Is(GroupState::kEmpty);
    if (!empty && !(g->Is(GroupState::kStable) && g->protocol_type == "consumer")) continue;
    std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>> writes;
    for (const auto& [tp, o] : g->offsets) {
      if (!empty && IsSubscribedToTopic(*g, tp.first)) continue;
      int64_t base = empty && g->protocol_type && g->empty_since_ms >= 0 ? g->empty_since_ms
                                                                         : o.commit_timestamp;
      if (now_ms - base >= retention_ms) writes.push_back({tp, std::nullopt});
    }
    // On a failed append the offsets stay (in memory and on disk) for the next check.
    if (!writes.empty() && !store_.AppendOffsets(id, writes).ok()) continue;
    for (const auto& [tp, v] : writes) g->offsets.erase(tp);
    // Kafka: an Empty group without offsets transitions to Dead and its metadata is
    // tombstoned. A group with members still completing MEMBER_ID_REQUIRED, or with a
    // transaction's offsets pending, is spared.
    if (empty && g->offsets.empty() && g->pending.empty() && !HasPendingTxnOffsets(id) &&
        store_.AppendGroup(id, std::nullopt).ok()) {
      g->state = GroupState::kDead;
      dead.push_back(id);
    }
  }
  for (const std::string& id : dead) groups_.erase(id);
}

// ---- Admin ---------------------------------------------------------------------------

GroupDescription GroupCoordinator::DescribeGroup(const std::string& group_id) const {
  GroupDescription d;
  d.group_id = group_id;
  const Group* g = FindGroup(group_id);
  if (g == nullptr) {
    d.state = "Dead";
    return d;
  }
  d.state = GroupStateName(g->state);
  d.protocol_type = g->protocol_type.value_or("");
  bool stable = g->Is(GroupState::kStable);
  if (stable) d.protocol = g->protocol.value_or("");
  for (const auto& [id, m] : g->members) {
    GroupDescription::Member dm{id, m->instance_id, m->client_id, m->client_host, "", ""};
    if (stable && g->protocol) {
      if (const std::string* md = m->Metadata(*g->protocol)) dm.metadata = *md;
      dm.assignment = m->assignment;
    }
    d.members.push_back(std::move(dm));
  }
  return d;
}

std::vector<std::tuple<std::string, std::string, std::string>> GroupCoordinator::ListGroups()
    const {
  std::vector<std::tuple<std::string, std::string, std::string>> out;
  for (const auto& [id, g] : groups_) {
    if (g->Is(GroupState::kDead)) continue;
    out.emplace_back(id, g->protocol_type.value_or(""), GroupStateName(g->state));
  }
  return out;
}

ErrorCode GroupCoordinator::DeleteGroup(const std::string& group_id) {
  if (group_id.empty()) return ErrorCode::kInvalidGroupId;
  Group* g = FindGroup(group_id);
  if (g == nullptr || g->Is(GroupState::kDead)) return ErrorCode::kGroupIdNotFound;
  if (!g->Is(GroupState::kEmpty)) return ErrorCode::kNonEmptyGroup;
  std::vector<std::pair<std::pair<std::string, int32_t>, std::optional<CommittedOffset>>> writes;
  for (const auto& [tp, o] : g->offsets) writes.push_back({tp, std::nullopt});
  if (!store_.AppendOffsets(group_id, writes).ok() ||
      !store_.AppendGroup(group_id, std::nullopt).ok()) {
    return ErrorCode::kUnknownServerError;
  }
  groups_.erase(group_id);
  return ErrorCode::kNone;
}

}  // namespace runnel::broker

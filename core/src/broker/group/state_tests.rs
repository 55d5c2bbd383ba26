//! The group state machine driven with made-up instants: every transition of Kafka's
//! GroupCoordinator that a client depends on, without sockets or clocks.

#![allow(clippy::unwrap_used)]

use super::*;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn request(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("{member_id}:{p}"))))
            .collect(),
        require_known_member_id: false,
    }
}

fn now_value<T>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(v) => v,
        Reply::Later { .. } => panic!("expected an immediate answer"),
    }
}

fn waiting<T: std::fmt::Debug>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Now(v) => panic!("expected to wait, got {v:?}"),
        Reply::Later { rx, .. } => rx,
    }
}

fn answered<T>(rx: &mut oneshot::Receiver<T>) -> T {
    rx.try_recv().expect("an answer")
}

/// A member's first JoinGroup (no id yet); `id` is the one the coordinator hands out.
fn fresh(id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: String::new(),
        ..request(id, protocols)
    }
}

/// A Stable group of the given members (joined in order, so the first leads) at
/// generation `members.len()`, at `t`.
fn stable(members: &[&str], t: Instant) -> Group {
    let mut group = Group::new("g");
    for (i, id) in members.iter().enumerate() {
        let _ = group.join(fresh(id, &["range"]), id.to_string(), 100, t);
        for earlier in &members[..i] {
            let _ = group.join(request(earlier, &["range"]), String::new(), 100, t);
        }
    }
    assert_eq!(group.phase(), Phase::CompletingRebalance);
    let generation = group.generation();
    assert_eq!(generation, members.len() as i32);
    let assignments = members
        .iter()
        .map(|id| (id.to_string(), Bytes::from(format!("assignment-{id}"))))
        .collect();
    let mut rx = waiting(group.sync(members[0], generation, None, None, assignments, t));
    assert_eq!(answered(&mut rx).error, None);
    for id in &members[1..] {
        let sync = now_value(group.sync(id, generation, None, None, vec![], t));
        assert_eq!(sync.assignment, Bytes::from(format!("assignment-{id}")));
    }
    assert_eq!(group.phase(), Phase::Stable);
    group
}

#[test]
fn a_new_member_gets_its_id_first_then_joins_as_leader() {
    // Proves JoinGroup v4+: an empty member id is answered with MEMBER_ID_REQUIRED and a
    // fresh id; joining with that id completes at once for a lone member, which leads and
    // sees itself with its metadata.
    let t = Instant::now();
    let mut group = Group::new("g");
    let mut first = fresh("c-1", &["range"]);
    first.require_known_member_id = true;
    let answer = now_value(group.join(first, "c-1".into(), 100, t));
    assert_eq!(answer.error, Some(ResponseError::MemberIdRequired));
    assert_eq!(answer.member_id, "c-1");
    assert_eq!(group.phase(), Phase::Empty);
    assert!(!group.is_empty(), "the handed-out id is remembered");

    let mut rx = waiting(group.join(request("c-1", &["range"]), String::new(), 100, t));
    let joined = answered(&mut rx);
    assert_eq!(joined.error, None);
    assert_eq!(joined.generation, 1);
    assert_eq!(joined.leader, "c-1");
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.members[0].metadata, Bytes::from("c-1:range"));
    assert_eq!(group.phase(), Phase::CompletingRebalance);
}

#[test]
fn an_unused_member_id_expires_after_the_session_timeout() {
    // Proves ids handed out with MEMBER_ID_REQUIRED don't pile up when the client never
    // comes back with them.
    let t = Instant::now();
    let mut group = Group::new("g");
    let mut first = fresh("c-1", &["range"]);
    first.require_known_member_id = true;
    now_value(group.join(first, "c-1".into(), 100, t));
    group.tick(t + SESSION - Duration::from_millis(1));
    assert!(!group.is_empty());
    group.tick(t + SESSION);
    assert!(group.is_empty());
}

#[test]
fn a_join_waits_until_every_known_member_rejoins() {
    // Proves the rebalance barrier: a new member's join waits; the existing member learns
    // of the rebalance from its heartbeat; once it rejoins, both get the new generation and
    // only the leader gets the member list. Followers then wait for the leader's SyncGroup.
    let t = Instant::now();
    let mut group = stable(&["a"], t);
    let mut b = waiting(group.join(fresh("b", &["range"]), "b".into(), 100, t));
    assert!(b.try_recv().is_err(), "b waits for a");
    assert_eq!(group.phase(), Phase::PreparingRebalance);
    assert_eq!(
        group.heartbeat("a", 1, t),
        Some(ResponseError::RebalanceInProgress)
    );
    let mut a = waiting(group.join(request("a", &["range"]), String::new(), 100, t));
    let (a, b) = (answered(&mut a), answered(&mut b));
    assert_eq!((a.generation, b.generation), (2, 2));
    assert_eq!((a.leader.as_str(), b.leader.as_str()), ("a", "a"));
    assert_eq!(a.members.len(), 2);
    assert!(b.members.is_empty());

    let mut follower = waiting(group.sync("b", 2, None, None, vec![], t));
    assert!(follower.try_recv().is_err(), "b waits for the leader");
    assert_eq!(
        group.validate_commit("b", 2),
        Some(ResponseError::RebalanceInProgress)
    );
    let assignments = vec![
        ("a".to_string(), Bytes::from("A")),
        ("b".to_string(), Bytes::from("B")),
    ];
    let mut leader = waiting(group.sync("a", 2, Some("consumer"), Some("range"), assignments, t));
    assert_eq!(answered(&mut leader).assignment, Bytes::from("A"));
    assert_eq!(answered(&mut follower).assignment, Bytes::from("B"));
    assert_eq!(group.phase(), Phase::Stable);
    assert_eq!(group.heartbeat("b", 2, t), None);
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_deadline() {
    // Proves the rebalance timeout: a member that keeps heartbeating but never rejoins is
    // removed when the timeout passes, and the others get a generation without it.
    let t = Instant::now();
    let mut group = stable(&["a", "b"], t);
    let mut c = waiting(group.join(fresh("c", &["range"]), "c".into(), 100, t));
    let mut a = waiting(group.join(request("a", &["range"]), String::new(), 100, t));
    let almost = t + REBALANCE - Duration::from_millis(1);
    assert_eq!(
        group.heartbeat("b", 2, almost),
        Some(ResponseError::RebalanceInProgress)
    );
    group.tick(almost);
    assert!(a.try_recv().is_err());
    group.tick(t + REBALANCE);
    let (a, c) = (answered(&mut a), answered(&mut c));
    assert_eq!((a.generation, c.generation), (3, 3));
    assert_eq!(a.members.len(), 2);
    assert_eq!(
        group.heartbeat("b", 3, t + REBALANCE),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_silent_member_expires_after_its_session_timeout() {
    // Proves session expiry: a member that stops heartbeating is removed once its session
    // timeout passes (not before), which starts a rebalance the others learn of.
    let t = Instant::now();
    let mut group = stable(&["a", "b"], t);
    let later = t + SESSION - Duration::from_millis(1);
    assert_eq!(group.heartbeat("a", 2, later), None);
    group.tick(later);
    assert_eq!(group.phase(), Phase::Stable);
    group.tick(t + SESSION);
    assert_eq!(group.phase(), Phase::PreparingRebalance);
    assert_eq!(
        group.heartbeat("a", 2, t + SESSION),
        Some(ResponseError::RebalanceInProgress)
    );
    let mut a = waiting(group.join(request("a", &["range"]), String::new(), 100, t + SESSION));
    let a = answered(&mut a);
    assert_eq!(a.generation, 3);
    assert_eq!(a.members.len(), 1);
}

#[test]
fn a_member_waiting_on_the_coordinator_does_not_expire() {
    // Proves that a follower blocked in SyncGroup (waiting for a slow leader) is not
    // expired for "not heartbeating"; the leader, which owes the SyncGroup, is removed at
    // the rebalance deadline and the follower is told to rejoin.
    let t = Instant::now();
    let mut group = stable(&["a", "b"], t);
    let mut c = waiting(group.join(fresh("c", &["range"]), "c".into(), 100, t));
    let mut a = waiting(group.join(request("a", &["range"]), String::new(), 100, t));
    let mut b = waiting(group.join(request("b", &["range"]), String::new(), 100, t));
    for rx in [&mut a, &mut b, &mut c] {
        assert_eq!(answered(rx).generation, 3);
    }
    let mut b_sync = waiting(group.sync("b", 3, None, None, vec![], t));
    // a (the leader) and c heartbeat but never sync; b waits without heartbeating.
    for s in (5..30).step_by(5) {
        let at = t + Duration::from_secs(s);
        assert_eq!(group.heartbeat("a", 3, at), None);
        assert_eq!(group.heartbeat("c", 3, at), None);
        group.tick(at);
        assert!(b_sync.try_recv().is_err(), "b is waiting, not silent");
    }
    let deadline = t + REBALANCE;
    group.heartbeat("a", 3, deadline);
    group.heartbeat("c", 3, deadline);
    group.tick(deadline);
    assert_eq!(
        answered(&mut b_sync).error,
        Some(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        group.heartbeat("a", 3, deadline),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn strangers_and_stale_generations_are_refused() {
    // Proves the error codes clients act on: UNKNOWN_MEMBER_ID for an id the group doesn't
    // know, ILLEGAL_GENERATION for an old generation, for heartbeats, syncs and commits;
    // anonymous commits only while the group has no members.
    let t = Instant::now();
    let mut empty = Group::new("g");
    assert_eq!(empty.validate_commit("", -1), None);
    assert_eq!(
        empty.validate_commit("x", 1),
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        empty.heartbeat("x", 0, t),
        Some(ResponseError::UnknownMemberId)
    );

    let mut group = stable(&["a"], t);
    assert_eq!(
        group.heartbeat("x", 1, t),
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.heartbeat("a", 0, t),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        now_value(group.sync("a", 7, None, None, vec![], t)).error,
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        now_value(group.join(request("x", &["range"]), String::new(), 100, t)).error,
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(group.validate_commit("a", 1), None);
    assert_eq!(
        group.validate_commit("a", 0),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.validate_commit("", -1),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn the_protocol_is_one_every_member_supports() {
    // Proves protocol selection: only protocols all members list are candidates, members
    // vote with their first choice; a member with nothing in common, or another protocol
    // type, is refused with INCONSISTENT_GROUP_PROTOCOL.
    let t = Instant::now();
    let mut group = Group::new("g");
    let mut a = waiting(group.join(
        fresh("a", &["cooperative-sticky", "range"]),
        "a".into(),
        100,
        t,
    ));
    assert_eq!(
        answered(&mut a).protocol_name.as_deref(),
        Some("cooperative-sticky")
    );
    let _b = waiting(group.join(fresh("b", &["roundrobin", "range"]), "b".into(), 100, t));
    let mut a = waiting(group.join(
        request("a", &["cooperative-sticky", "range"]),
        String::new(),
        100,
        t,
    ));
    let a = answered(&mut a);
    assert_eq!(a.protocol_name.as_deref(), Some("range"));
    assert_eq!(a.members[0].metadata, Bytes::from("a:range"));

    let stranger = now_value(group.join(fresh("c", &["sticky"]), "c".into(), 100, t));
    assert_eq!(
        stranger.error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    let mut connect = fresh("d", &["range"]);
    connect.protocol_type = "connect".into();
    let other_type = now_value(group.join(connect, "d".into(), 100, t));
    assert_eq!(
        other_type.error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn leaving_during_a_rebalance_lets_it_complete() {
    // Proves LeaveGroup: a member that leaves instead of rejoining no longer holds up the
    // rebalance; leaving twice is UNKNOWN_MEMBER_ID; the last one out empties the group.
    let t = Instant::now();
    let mut group = stable(&["a", "b"], t);
    let mut c = waiting(group.join(fresh("c", &["range"]), "c".into(), 100, t));
    let mut a = waiting(group.join(request("a", &["range"]), String::new(), 100, t));
    assert!(c.try_recv().is_err());
    assert_eq!(group.leave("b", t), None);
    assert_eq!(answered(&mut a).members.len(), 2);
    assert_eq!(answered(&mut c).generation, 3);
    assert_eq!(group.leave("b", t), Some(ResponseError::UnknownMemberId));
    assert_eq!(group.leave("a", t), None);
    assert_eq!(group.leave("c", t), None);
    assert_eq!(group.phase(), Phase::Empty);
    assert!(group.is_empty());
}

#[test]
fn a_new_rebalance_tells_waiting_followers_to_rejoin() {
    // Proves that a follower waiting in SyncGroup is answered REBALANCE_IN_PROGRESS when a
    // member joins before the leader has sent assignments, instead of waiting forever.
    let t = Instant::now();
    let mut group = stable(&["a", "b"], t);
    let _c = waiting(group.join(fresh("c", &["range"]), "c".into(), 100, t));
    let _a = waiting(group.join(request("a", &["range"]), String::new(), 100, t));
    let _b = waiting(group.join(request("b", &["range"]), String::new(), 100, t));
    assert_eq!(group.phase(), Phase::CompletingRebalance);
    let mut b_sync = waiting(group.sync("b", 3, None, None, vec![], t));
    let _d = waiting(group.join(fresh("d", &["range"]), "d".into(), 100, t));
    assert_eq!(
        answered(&mut b_sync).error,
        Some(ResponseError::RebalanceInProgress)
    );
    assert_eq!(group.phase(), Phase::PreparingRebalance);
}

#[test]
fn a_follower_rejoining_a_stable_group_unchanged_causes_no_rebalance() {
    // Proves that a follower whose JoinGroup repeats its current metadata gets the current
    // generation back (no rebalance), while the leader rejoining starts one.
    let t = Instant::now();
    let mut group = stable(&["a", "b"], t);
    let again = now_value(group.join(request("b", &["range"]), String::new(), 100, t));
    assert_eq!((again.error, again.generation), (None, 2));
    assert_eq!(group.phase(), Phase::Stable);
    let _a = waiting(group.join(request("a", &["range"]), String::new(), 100, t));
    assert_eq!(group.phase(), Phase::PreparingRebalance);
}

#[test]
fn the_member_limit_is_enforced() {
    // Proves the per-group member bound: a join past it is GROUP_MAX_SIZE_REACHED.
    let t = Instant::now();
    let mut group = Group::new("g");
    let _a = waiting(group.join(fresh("a", &["range"]), "a".into(), 1, t));
    let refused = now_value(group.join(fresh("b", &["range"]), "b".into(), 1, t));
    assert_eq!(refused.error, Some(ResponseError::GroupMaxSizeReached));
}

#[test]
fn shutdown_answers_every_waiter() {
    // Proves that a stopping broker doesn't leave JoinGroup/SyncGroup requests hanging.
    let t = Instant::now();
    let mut group = stable(&["a"], t);
    let mut b = waiting(group.join(fresh("b", &["range"]), "b".into(), 100, t));
    group.shutdown();
    assert_eq!(
        answered(&mut b).error,
        Some(ResponseError::CoordinatorNotAvailable)
    );
}

#[test]
fn txn_offset_commits_are_checked_like_kafka() {
    // Proves TxnOffsetCommit's member check: a stale generation or a member the group does
    // not have is refused, while a producer outside the group (no member id, generation
    // -1) may stage offsets for a group with members or without.
    let t = Instant::now();
    let group = stable(&["a"], t);
    assert_eq!(group.validate_txn_commit("a", 1), None);
    assert_eq!(group.validate_txn_commit("", -1), None);
    assert_eq!(
        group.validate_txn_commit("a", 0),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.validate_txn_commit("zombie", 1),
        Some(ResponseError::UnknownMemberId)
    );
    let empty = Group::new("g");
    assert_eq!(empty.validate_txn_commit("", -1), None);
    assert_eq!(
        empty.validate_txn_commit("x", -1),
        Some(ResponseError::UnknownMemberId)
    );
}

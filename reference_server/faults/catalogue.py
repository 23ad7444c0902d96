"""The catalogue of deliberate bugs and the parser of ``PUSHER_REF_FAULTS``.

Each name is one rule broken on purpose, so the suite's self-test can prove that the checks of
the requirements listed for it in ``fixtures/faults.yaml`` go red. The names are that file's
keys: renaming one breaks the self-test.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["ClusterFault", "ClusterFaultSet", "Fault", "FaultSet", "parse_faults", "split_faults"]


class Fault(enum.StrEnum):
    """One deliberate bug; the value is the name used in ``PUSHER_REF_FAULTS``."""

    UNKNOWN_KEY_ACCEPTED = "unknown_key_accepted"
    SOCKET_ID_WITHOUT_DOT = "socket_id_without_dot"
    ESTABLISHED_DATA_AS_OBJECT = "established_data_as_object"
    PONG_AS_BINARY = "pong_as_binary"
    NO_PONG = "no_pong"
    WS_PING_IGNORED = "ws_ping_ignored"
    NO_IDLE_PING = "no_idle_ping"
    PONG_TIMEOUT_NOT_ENFORCED = "pong_timeout_not_enforced"
    UNKNOWN_KEY_CLOSE_4009 = "unknown_key_close_4009"
    ANY_PATH_UPGRADES = "any_path_upgrades"
    NO_ERROR_BEFORE_CLOSE_LEGACY = "no_error_before_close_legacy"
    OLD_PROTOCOL_ACCEPTED = "old_protocol_accepted"
    PUBLIC_AUTH_CHECKED = "public_auth_checked"
    SUBSCRIPTION_SUCCEEDED_WITHOUT_DATA = "subscription_succeeded_without_data"
    DUPLICATE_SUBSCRIBE_SILENT = "duplicate_subscribe_silent"
    UNSUBSCRIBE_IGNORED = "unsubscribe_ignored"
    EVENT_DATA_REENCODED = "event_data_reencoded"
    CHANNEL_NAME_LENGTH_100 = "channel_name_length_100"
    SKIP_SIGNATURE_CHECK = "skip_signature_check"
    SKIP_TIMESTAMP_CHECK = "skip_timestamp_check"
    SKIP_BODY_MD5_CHECK = "skip_body_md5_check"
    SKIP_AUTH_KEY_CHECK = "skip_auth_key_check"
    IGNORE_SOCKET_ID_EXCLUSION = "ignore_socket_id_exclusion"
    FIRST_CHANNEL_ONLY = "first_channel_only"
    NO_EVENT_SIZE_LIMIT = "no_event_size_limit"
    SUCCESS_BODY_OK_TRUE = "success_body_ok_true"
    EVENT_NAME_LENGTH_UNCHECKED = "event_name_length_unchecked"
    MISSING_NAME_ACCEPTED = "missing_name_accepted"
    UNKNOWN_APP_ID_401 = "unknown_app_id_401"
    # Channel names, auth, presence, cache, encrypted channels, sign-in and client events.
    INVALID_CHANNEL_NAMES_ACCEPTED = "invalid_channel_names_accepted"
    UNANCHORED_PRIVATE_PREFIX = "unanchored_private_prefix"
    PRIVATE_WITHOUT_AUTH_ACCEPTED = "private_without_auth_accepted"
    PRIVATE_AUTH_MISSING_CLOSES = "private_auth_missing_closes"
    AUTH_SOCKET_ID_IGNORED = "auth_socket_id_ignored"
    AUTH_KEY_PART_IGNORED = "auth_key_part_ignored"
    PRESENCE_CHANNEL_DATA_UNSIGNED = "presence_channel_data_unsigned"
    PRESENCE_USER_ID_OPTIONAL = "presence_user_id_optional"
    PRESENCE_ROSTER_EXCLUDES_SELF = "presence_roster_excludes_self"
    PRESENCE_COUNTED_PER_CONNECTION = "presence_counted_per_connection"
    MEMBER_REMOVED_ON_FIRST_LEAVE = "member_removed_on_first_leave"
    PRESENCE_MEMBER_LIMIT_OFF = "presence_member_limit_off"
    MEMBER_ADDED_DATA_AS_OBJECT = "member_added_data_as_object"
    MEMBER_ADDED_USER_INFO_NESTED = "member_added_user_info_nested"
    MEMBER_REMOVED_DATA_AS_OBJECT = "member_removed_data_as_object"
    PRESENCE_IDS_KEYED_BY_SOCKET = "presence_ids_keyed_by_socket"
    PRESENCE_ROSTER_PER_CONNECTION = "presence_roster_per_connection"
    MEMBER_REMOVED_NOT_SENT_ON_CLOSE = "member_removed_not_sent_on_close"
    MEMBER_ADDED_ECHOED_TO_JOINER = "member_added_echoed_to_joiner"
    PRESENCE_USER_DROPPED_ON_FIRST_LEAVE = "presence_user_dropped_on_first_leave"
    CACHE_MISS_ALWAYS = "cache_miss_always"
    CACHE_ONLY_WHILE_OCCUPIED = "cache_only_while_occupied"
    CACHE_HIT_SENT_AS_CACHE_MISS = "cache_hit_sent_as_cache_miss"
    CACHED_EVENT_WITHOUT_CHANNEL = "cached_event_without_channel"
    ENCRYPTED_WITHOUT_AUTH_ACCEPTED = "encrypted_without_auth_accepted"
    SIGNIN_SIGNATURE_UNCHECKED = "signin_signature_unchecked"
    SERVER_TO_USER_NOT_DELIVERED = "server_to_user_not_delivered"
    TERMINATE_IGNORED = "terminate_ignored"
    NON_CLIENT_EVENTS_RELAYED = "non_client_events_relayed"
    CLIENT_EVENTS_ON_PUBLIC = "client_events_on_public"
    CLIENT_EVENTS_FROM_UNSUBSCRIBED = "client_events_from_unsubscribed"
    CLIENT_EVENT_ECHO = "client_event_echo"
    CLIENT_EVENT_NO_USER_ID = "client_event_no_user_id"
    CLIENT_EVENT_RATE_UNLIMITED = "client_event_rate_unlimited"
    CLIENT_EVENT_RELAYED_TWICE = "client_event_relayed_twice"
    # HTTP API endpoints and limits.
    TRIGGER_INFO_IGNORED = "trigger_info_ignored"
    TOO_MANY_CHANNELS_ACCEPTED = "too_many_channels_accepted"
    PUBLISH_CHANNEL_NAMES_UNCHECKED = "publish_channel_names_unchecked"
    POST_QUERY_PARAMS_IGNORED = "post_query_params_ignored"
    NO_KEEP_ALIVE = "no_keep_alive"
    BATCH_SIZE_UNCHECKED = "batch_size_unchecked"
    BATCH_INFO_IGNORED = "batch_info_ignored"
    BATCH_ITEM_SIZE_UNCHECKED = "batch_item_size_unchecked"
    BATCH_PARTIAL_DELIVERY = "batch_partial_delivery"
    BATCH_REPLY_BATCH_OBJECT = "batch_reply_batch_object"
    CHANNELS_FILTER_IGNORED = "channels_filter_ignored"
    CHANNELS_USER_COUNT_UNRESTRICTED = "channels_user_count_unrestricted"
    CHANNEL_ATTRIBUTE_NOT_APPLICABLE_DROPPED = "channel_attribute_not_applicable_dropped"
    USERS_ON_NON_PRESENCE = "users_on_non_presence"
    TERMINATE_UNAUTHENTICATED = "terminate_unauthenticated"
    EVENT_LIMIT_ON_WHOLE_BODY = "event_limit_on_whole_body"
    EXCLUDE_SOCKET_ID_UNVALIDATED = "exclude_socket_id_unvalidated"
    LARGE_BODY_SIGNATURE_TRUNCATED = "large_body_signature_truncated"
    USER_COUNT_PER_CONNECTION = "user_count_per_connection"
    USERS_LISTED_PER_CONNECTION = "users_listed_per_connection"
    USERS_ENDPOINT_500 = "users_endpoint_500"
    CHANNELS_LIST_PRESENCE_ONLY = "channels_list_presence_only"
    CHANNELS_INFO_IGNORED = "channels_info_ignored"
    TERMINATE_HITS_PRESENCE_MEMBERS = "terminate_hits_presence_members"
    QUERIES_UNSIGNED_ACCEPTED = "queries_unsigned_accepted"
    BATCH_INCOMPLETE_ITEMS_SKIPPED = "batch_incomplete_items_skipped"
    EMPTY_CHANNELS_ACCEPTED = "empty_channels_accepted"
    # Webhooks.
    WEBHOOK_WITHOUT_TIME_MS = "webhook_without_time_ms"
    WEBHOOK_BAD_SIGNATURE = "webhook_bad_signature"
    WEBHOOK_CONTENT_TYPE_TEXT = "webhook_content_type_text"
    WEBHOOK_BATCHED_PER_INPUT = "webhook_batched_per_input"
    WEBHOOK_NO_RETRY = "webhook_no_retry"
    WEBHOOK_VACATED_NOT_DELAYED = "webhook_vacated_not_delayed"
    WEBHOOK_CLIENT_EVENT_WITHOUT_SOCKET_ID = "webhook_client_event_without_socket_id"
    WEBHOOK_MEMBERS_PER_CONNECTION = "webhook_members_per_connection"
    WEBHOOK_NO_CLIENT_EVENT = "webhook_no_client_event"
    WEBHOOK_NO_CACHE_MISS = "webhook_no_cache_miss"
    WEBHOOK_VACATED_NOT_ON_CLOSE = "webhook_vacated_not_on_close"
    WEBHOOK_MEMBER_REMOVED_NOT_ON_CLOSE = "webhook_member_removed_not_on_close"
    WEBHOOK_VACATED_ON_ANY_LEAVE = "webhook_vacated_on_any_leave"
    WEBHOOK_CLIENT_EVENT_WITHOUT_USER_ID = "webhook_client_event_without_user_id"
    # Robustness.
    MALFORMED_SENDER_ADDRESS_BLOCKED = "malformed_sender_address_blocked"
    MALFORMED_ERROR_BROADCAST = "malformed_error_broadcast"
    INVALID_JSON_CLOSES = "invalid_json_closes"
    BINARY_FRAME_CLOSE_1011 = "binary_frame_close_1011"
    OVERSIZED_BODY_500 = "oversized_body_500"
    WRONG_CONTENT_TYPE_DESYNC = "wrong_content_type_desync"
    # Delivery (every subscriber gets every event, once, in order).
    DROP_ONE_IN_N = "drop_one_in_n"
    DUPLICATE_DELIVERY = "duplicate_delivery"
    REORDER_UNDER_LOAD = "reorder_under_load"
    LEAK_TO_UNSUBSCRIBED = "leak_to_unsubscribed"
    # Reconnection: close codes and reasons, dead links, what a going connection leaves
    # behind, and graceful shutdown.
    CLOSE_WITHOUT_REASON = "close_without_reason"
    PONG_TIMEOUT_CLOSES_4009 = "pong_timeout_closes_4009"
    NONCLOSING_ERROR_CODE_4200 = "nonclosing_error_code_4200"
    ACTIVITY_TIMEOUT_ZERO = "activity_timeout_zero"
    DEAD_LINK_NOT_DETECTED = "dead_link_not_detected"
    PRESENCE_KEPT_AFTER_DEAD_LINK = "presence_kept_after_dead_link"
    CLEANUP_TWICE_ON_ABRUPT_CLOSE = "cleanup_twice_on_abrupt_close"
    ABRUPT_CLOSE_DROPS_USER = "abrupt_close_drops_user"
    DROPPED_CONNECTION_RESUMED = "dropped_connection_resumed"
    AUTH_FOR_RECENT_SOCKET_ID_ACCEPTED = "auth_for_recent_socket_id_accepted"
    WEBHOOK_GRACE_IGNORED_ON_ABRUPT_CLOSE = "webhook_grace_ignored_on_abrupt_close"
    SHUTDOWN_DROPS_TCP = "shutdown_drops_tcp"
    SHUTDOWN_ACCEPTS_NEW_HANDSHAKES = "shutdown_accepts_new_handshakes"
    RESUBSCRIBER_GETS_EVENTS_TWICE = "resubscriber_gets_events_twice"
    ONLY_PONG_COUNTS_AS_LIFE = "only_pong_counts_as_life"
    # Several apps on one server: isolation, the enabled flag and the connection quota.
    APPS_SHARE_CHANNELS = "apps_share_channels"
    DISABLED_APP_ACCEPTED = "disabled_app_accepted"
    QUOTA_IGNORED = "quota_ignored"


FaultSet = frozenset[Fault]
"""The faults switched on for one server; empty in every real use."""


class ClusterFault(enum.StrEnum):
    """One deliberate bug of a node's cluster link (``faults/cluster.py``).

    Kept apart from ``Fault``: those are the single-server self-test's faults, listed in
    ``fixtures/faults.yaml`` with the requirements each must turn red; these only show
    against several nodes sharing Redis (the cluster certification), so that list does not
    carry them and the single-server self-test never runs them.
    """

    #: The node sends nothing to the other nodes (no relays, no state, no heartbeats).
    CLUSTER_NO_FORWARD = "cluster_no_forward"
    #: The node sends every message to the other nodes twice.
    CLUSTER_DOUBLE_FORWARD = "cluster_double_forward"


ClusterFaultSet = frozenset[ClusterFault]


def parse_faults(text: str | Iterable[str]) -> FaultSet:
    """Parse a comma-separated list of fault names.

    Blank items are skipped so that ``PUSHER_REF_FAULTS=""`` and a trailing comma are harmless.

    Raises:
        ValueError: naming the first unknown fault, so startup can refuse it.
    """
    items = text.split(",") if isinstance(text, str) else text
    faults: set[Fault] = set()
    for item in items:
        name = item.strip()
        if not name:
            continue
        try:
            faults.add(Fault(name))
        except ValueError:
            raise ValueError(f"unknown fault name {name!r}") from None
    return frozenset(faults)


def split_faults(text: str) -> tuple[FaultSet, ClusterFaultSet]:
    """Parse ``PUSHER_REF_FAULTS`` into the server's faults and its cluster link's faults.

    Raises:
        ValueError: naming the first name that is neither.
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    cluster = {name for name in names if name in {fault.value for fault in ClusterFault}}
    return parse_faults(n for n in names if n not in cluster), frozenset(
        ClusterFault(name) for name in cluster
    )

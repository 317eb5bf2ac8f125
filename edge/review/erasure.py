"""Erasure on request: a client who withdraws consent gets the session deleted from the appliance
(:meth:`edge.store.Store.erase`) and, where the room publishes, a ``retract`` in its sequence makes
the hub drop the session from what it has not released. Recorded in the access log."""

from __future__ import annotations

import logging

from contract.payload import Retract
from edge.config.models import AppConfig
from edge.errors import StoreError
from edge.review.staff import ERASED, REFUSED, AccessLog, access_log
from edge.store import Erased, Store

logger = logging.getLogger(__name__)


def retract_topic(config: AppConfig) -> str:
    return f"{config.mqtt.topic_prefix}/{config.room.site}/{config.room.room}/retract"


def erase_session(
    config: AppConfig, session_id: str, who: str, address: str = "", log: AccessLog | None = None
) -> Erased:
    """Erase ``session_id`` on behalf of ``who``; the erasure (or its refusal) goes to the access log.

    Raises:
        StoreError: no such session, it is still recording, or the database failed.
    """
    log = log if log is not None else access_log(config)
    db_path = config.storage.state_dir / config.storage.database
    if not db_path.is_file():
        raise StoreError(f"no database at {db_path}; check storage.state_dir in the room config")
    topic = retract_topic(config)
    room = config.room

    def retract(seq: int, message_id: str) -> tuple[str, str]:
        body = Retract(
            kind="retract",
            message_id=message_id,
            seq=seq,
            site=room.site,
            room=room.room,
            device_id=room.device_id,
            session_id=session_id,
        )
        return topic, body.model_dump_json()

    # Migrated here too: an erasure must work on a database the room has not opened since an upgrade.
    store = Store(db_path)
    try:
        erased = store.erase(session_id, retract if config.mqtt.enabled else None)
    except StoreError as exc:
        log.record(who, REFUSED, session_id, address, f"erase: {exc}")
        raise
    finally:
        store.close()
    counts = ", ".join(f"{k} {v}" for k, v in erased.counts.items() if v)
    log.record(who, ERASED, session_id, address, counts + ("; retract queued" if config.mqtt.enabled else ""))
    logger.warning("session %s erased on request by %s (%s)", session_id, who, counts)
    return erased

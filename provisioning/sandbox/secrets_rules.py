"""Secrets Manager's asynchronous deletion, installed inside the sandbox's moto server process.

On AWS a secret's name is not free the moment DeleteSecret answers:

* deleted with a recovery window (7-30 days), the secret keeps its name, with a DeletedDate,
  until the window ends or RestoreSecret brings it back;
* deleted with ForceDeleteWithoutRecovery, a background process removes it "after a short
  delay" (``secretsmanager_force_delete``): until then it still has its name and DeletedDate,
  and cannot be restored.

A secret marked for deletion takes no new value (PutSecretValue) until it is restored.

Meanwhile CreateSecret with that name fails with InvalidRequestException ("... already
scheduled for deletion."). Moto frees a force-deleted name at once and answers a create over a
recovery-window deletion with ResourceExistsException.
"""

from datetime import UTC, datetime

from . import clock, delays

SCHEDULED = ("You can't create this secret because a secret with this name is already "
             "scheduled for deletion.")
DELETED_WITHOUT_RECOVERY = ("You can't perform this operation on the secret because it was "
                            "deleted without recovery.")
MARKED_FOR_DELETION = ("You can't perform this operation on the secret because it was marked "
                       "for deletion.")


def _invalid_request(message: str) -> Exception:
    from moto.secretsmanager.exceptions import InvalidRequestException

    return InvalidRequestException(message)


def _purge(backend) -> None:
    now = clock.now()
    for name, secret in list(backend.secrets.items()):
        gone_at = secret.__dict__.get("_sandbox_gone_at")
        if gone_at is not None and now >= gone_at:
            backend.secrets.pop(name)


def _existing(backend, secret_id: str):
    return backend.secrets[secret_id] if backend._is_valid_identifier(secret_id) else None


def _purging(original):
    def wrapper(self, *args, **kwargs):
        with delays._lock:
            _purge(self)
        return original(self, *args, **kwargs)

    return wrapper


def _create(original):
    def wrapper(self, name, *args, **kwargs):
        with delays._lock:
            _purge(self)
            existing = _existing(self, name)
            if existing is not None and existing.is_deleted():
                raise _invalid_request(SCHEDULED)
        return original(self, name, *args, **kwargs)

    return wrapper


def _delete(original):
    def wrapper(self, secret_id, recovery_window_in_days, force_delete_without_recovery):
        with delays._lock:
            _purge(self)
            existing = _existing(self, secret_id)
            if not force_delete_without_recovery or existing is None or delays._settings[
                    "paused"]:
                return original(self, secret_id, recovery_window_in_days,
                                force_delete_without_recovery)
            # Keep the name (and the DeletedDate) until the background deletion is done.
            now = datetime.now(UTC).timestamp()
            if not existing.is_deleted():
                existing.delete(now)
            existing.__dict__.setdefault(
                "_sandbox_gone_at", clock.now() + delays.seconds("secretsmanager_force_delete")
            )
            return existing.arn, existing.name, now

    return wrapper


def _restore(original):
    def wrapper(self, secret_id):
        with delays._lock:
            _purge(self)
            existing = _existing(self, secret_id)
            if existing is not None and "_sandbox_gone_at" in existing.__dict__:
                raise _invalid_request(DELETED_WITHOUT_RECOVERY)
        return original(self, secret_id)

    return wrapper


def _put_value(original):
    def wrapper(self, secret_id, *args, **kwargs):
        with delays._lock:
            _purge(self)
            existing = _existing(self, secret_id)
            if existing is not None and existing.is_deleted():
                raise _invalid_request(MARKED_FOR_DELETION)
        return original(self, secret_id, *args, **kwargs)

    return wrapper


def _tagged_resources(original):
    def wrapper(self):
        with delays._lock:
            _purge(self)
        yield from original(self)

    return wrapper


# SecretsManagerBackend method -> the wrapper that gives it AWS's behaviour.
PATCHES = {
    "create_secret": _create,
    "delete_secret": _delete,
    "restore_secret": _restore,
    "put_secret_value": _put_value,
    "describe_secret": _purging,
    "get_secret_value": _purging,
    "list_secrets": _purging,
    "iter_tagged_resources": _tagged_resources,
}


def install() -> None:
    from moto.secretsmanager.models import SecretsManagerBackend

    for name, make_wrapper in PATCHES.items():
        delays._patch(SecretsManagerBackend, name, make_wrapper)

"""Signal receivers of the annotation app (connected in ``AnnotationConfig.ready``)."""
from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db.models.signals import pre_save

log = logging.getLogger("tribunal.audit")


def _revoke_tokens_on_password_change(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """A password change (the form, the admin, ``changepassword``, a reset) revokes every API token
    of the user: whoever held the old password may have made one."""
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return  # e.g. a login's last_login update: no query
    old = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if old is not None and old != instance.password:
        from knox.models import AuthToken

        deleted, _ = AuthToken.objects.filter(user_id=instance.pk).delete()
        if deleted:
            log.info("password of user %s changed: %d API token(s) revoked", instance.pk, deleted)


def connect() -> None:
    pre_save.connect(_revoke_tokens_on_password_change, sender=get_user_model(),
                     dispatch_uid="tribunal-revoke-tokens-on-password-change")

"""Writes to the core models. Every function is keyword-only and atomic.

Imports live in ``annotation/importing/``; this module holds taxonomy versioning, presets,
projects and memberships, and :func:`annotation_record`, the one way a validated judgment of any
source becomes an ``Annotation`` (the importer's COPY fast path writes the same columns in bulk).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from annotation import roles
from annotation.edits import (  # noqa: F401  (re-exported: the edit writes live in annotation/edits.py)
    edit_review_content_hash,
    edit_review_item_create,
    edited_response_create,
)
from annotation.judgments import (
    CleanJudgment,
    Judgment,
    annotation_fields,
    is_label_category,
    judgment_validate,
    rules_for,
)
from annotation.models import (
    Annotation,
    HazardCategory,
    ImmutableError,
    Item,
    Membership,
    Principle,
    PrinciplePreference,
    PrincipleSet,
    PriorityRaise,
    Project,
    Response,
    ResponseSafety,
    Taxonomy,
    TaxonomyVersion,
)
from annotation.presets import DEFAULT_PRINCIPLES, TAXONOMY_PRESETS, TaxonomySpec


@transaction.atomic
def roles_ensure_groups() -> list[Group]:
    """Create the admin / researcher / annotator groups if missing. Idempotent."""
    return [Group.objects.get_or_create(name=name)[0] for name in roles.GROUPS]


@transaction.atomic
def taxonomy_load_preset(*, spec: TaxonomySpec) -> TaxonomyVersion:
    """Load one preset as a published version. Idempotent: if the newest published version of the
    taxonomy already has exactly these categories it is returned unchanged; if the preset changed
    (a new Tribunal release) a new version is published, leaving the old one and its labels intact."""
    taxonomy, _ = Taxonomy.objects.get_or_create(
        slug=spec.slug, defaults={"name": spec.name, "source": spec.source, "description": spec.description}
    )
    wanted = [
        (c.code, c.name, c.group, c.description, list(c.aliases), order)
        for order, c in enumerate(spec.categories, start=1)
    ]
    latest = taxonomy.versions.filter(status=TaxonomyVersion.Status.PUBLISHED).order_by("-version").first()
    if latest is not None:
        have = [
            (c.code, c.name, c.group, c.description, list(c.aliases), c.order)
            for c in latest.categories.order_by("order")
        ]
        if have == wanted:
            return latest
    draft = taxonomy.versions.filter(status=TaxonomyVersion.Status.DRAFT).first()
    if draft is not None:
        draft.categories.all().delete()
    else:
        draft = TaxonomyVersion.objects.create(
            taxonomy=taxonomy, version=_next_version_number(taxonomy), based_on=latest
        )
    HazardCategory.objects.bulk_create(
        [
            HazardCategory(version=draft, code=code, name=name, group=group, description=desc, aliases=aliases, order=order)
            for code, name, group, desc, aliases, order in wanted
        ]
    )
    return taxonomy_version_publish(version=draft, notes=f"Preset shipped with Tribunal ({spec.source}).")


def _next_version_number(taxonomy: Taxonomy) -> int:
    last = taxonomy.versions.order_by("-version").values_list("version", flat=True).first()
    return (last or 0) + 1


@transaction.atomic
def taxonomy_load_presets() -> list[TaxonomyVersion]:
    """Load every preset, then the crosswalk between them (seeded once per pair of versions;
    rows an admin edited are never overwritten: see ``annotation.crosswalk``)."""
    from annotation.crosswalk import crosswalk_seed_presets

    versions = [taxonomy_load_preset(spec=spec) for spec in TAXONOMY_PRESETS]
    crosswalk_seed_presets(versions)
    return versions


@transaction.atomic
def taxonomy_version_new_draft(*, taxonomy: Taxonomy) -> TaxonomyVersion:
    """Start editing a taxonomy: a draft copy of its newest version (or the existing draft)."""
    Taxonomy.objects.select_for_update().filter(pk=taxonomy.pk).first()
    existing = taxonomy.versions.filter(status=TaxonomyVersion.Status.DRAFT).first()
    if existing is not None:
        return existing
    base = taxonomy.versions.order_by("-version").first()
    draft = TaxonomyVersion.objects.create(taxonomy=taxonomy, version=_next_version_number(taxonomy), based_on=base)
    if base is not None:
        HazardCategory.objects.bulk_create(
            [
                HazardCategory(
                    version=draft, code=c.code, name=c.name, group=c.group, description=c.description,
                    aliases=list(c.aliases), order=c.order,
                )
                for c in base.categories.all()
            ]
        )
    return draft


@transaction.atomic
def taxonomy_version_publish(*, version: TaxonomyVersion, notes: str = "") -> TaxonomyVersion:
    """Freeze a draft. After this neither the version nor its categories can change."""
    locked = TaxonomyVersion.objects.select_for_update().get(pk=version.pk)
    if locked.is_published:
        raise ImmutableError(f"{locked} is already published.")
    if not locked.categories.exists():
        raise ValueError("A taxonomy version needs at least one category before it can be published.")
    locked.status = TaxonomyVersion.Status.PUBLISHED
    locked.published_at = timezone.now()
    if notes:
        locked.notes = notes
    # The model's save() guard reads the *stored* status, which is still draft here.
    locked.save(update_fields=["status", "published_at", "notes"])
    return locked


@transaction.atomic
def principle_set_load_default() -> PrincipleSet:
    """The default HHH principle set. Creates missing principles; never overwrites admin edits."""
    pset, _ = PrincipleSet.objects.get_or_create(
        slug="tribunal-hhh",
        defaults={
            "name": "Tribunal HHH principles",
            "description": "Helpfulness, honesty and harmlessness principles for discretion analysis.",
        },
    )
    existing = set(pset.principles.values_list("code", flat=True))
    Principle.objects.bulk_create(
        [
            Principle(principle_set=pset, code=code, short=short, text=text, group=group, order=order)
            for order, (code, short, text, group) in enumerate(DEFAULT_PRINCIPLES, start=1)
            if code not in existing
        ]
    )
    return pset


@transaction.atomic
def project_create(
    *,
    slug: str,
    name: str,
    taxonomy_version: TaxonomyVersion,
    mode: str = Project.Mode.RANKING_SAFETY,
    overlap: int = 1,
    principle_set: PrincipleSet | None = None,
    guidelines: str = "",
    description: str = "",
    created_by=None,
) -> Project:
    if not taxonomy_version.is_published:
        raise ValueError("Projects label under a published taxonomy version; publish the draft first.")
    project = Project(
        slug=slug, name=name, taxonomy_version=taxonomy_version, mode=mode, overlap=overlap,
        principle_set=principle_set, guidelines=guidelines, description=description, created_by=created_by,
    )
    project.full_clean()
    project.save()
    if created_by is not None and not roles.is_admin(created_by):
        Membership.objects.create(project=project, user=created_by, role=Membership.Role.RESEARCHER)
    return project


@transaction.atomic
def membership_set(*, project: Project, user, role: str) -> Membership:
    """Add a user to a project, or change their role there."""
    if role not in Membership.Role.values:
        raise ValueError(f"Unknown project role {role!r}; expected one of {Membership.Role.values}.")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, project: Project, user) -> bool:
    """Take a user out of a project. Their judgments stay (append-only) and keep counting; they lose
    access to the project. False when they were not a member."""
    deleted, _ = Membership.objects.filter(project=project, user=user).delete()
    return deleted > 0


@transaction.atomic
def user_set_role(*, user, role: str) -> None:
    """Give ``user`` exactly one site-wide role (``admin``, ``researcher`` or ``annotator``).

    The role groups are replaced, other groups are kept, and ``is_staff`` follows the role: only
    admins may reach Django admin, so a demoted admin loses it in the same transaction.
    Superusers keep ``is_staff`` whatever their group (they are admins by definition).
    """
    if role not in roles.GROUPS:
        raise ValueError(f"Unknown role {role!r}; expected one of {roles.GROUPS}.")
    groups = {g.name: g for g in roles_ensure_groups()}
    user.groups.remove(*[g for name, g in groups.items() if name != role])
    user.groups.add(groups[role])
    user.is_staff = role == roles.ADMIN or user.is_superuser
    user.save(update_fields=["is_staff"])
    if hasattr(user, "_tribunal_groups"):
        del user._tribunal_groups  # the cached role set in roles._group_names is stale now


@transaction.atomic
def user_sync_staff(*, user) -> None:
    """Make ``is_staff`` match the admin role again (after a form edited groups or the flag)."""
    is_admin = user.is_superuser or user.groups.filter(name=roles.ADMIN).exists()
    if user.is_staff != is_admin:
        user.is_staff = is_admin
        user.save(update_fields=["is_staff"])


def judgment_clean(
    *, project: Project, judgment: Judgment, shown_order: list[int], source: str,
    taxonomy_version_id: int | None = None, name_by_letter: bool = False, review_of: int | None = None,
) -> CleanJudgment:
    """Check ``judgment`` by the rules of ``source`` (``annotation.judgments.rules_for``) against the
    project's taxonomy version (or ``taxonomy_version_id``) and principle set; raises
    ``JudgmentInvalid`` listing every problem. Looks up only the categories and principles the
    judgment names (no query when it names none). ``name_by_letter``: messages name responses by
    their letter in ``shown_order`` (the pages), not by id.

    ``review_of``: the item's ``Item.review_of_id`` (an ``edit_review`` item): the judgment is then
    an edit verdict (``annotation.judgments.edit_review_problems``); a fix is compared with the
    edit's text, read here."""
    if review_of is not None:
        edited_text = None
        if judgment.edit_verdict == "fix":
            edited_text = Response.objects.filter(pk=review_of).values_list("text", flat=True).first()
        return judgment_validate(
            project=project, judgment=judgment, shown_order=shown_order, category_codes=set(), principle_ids=set(),
            rules=rules_for(source), review_of=review_of, edited_text=edited_text,
        )
    codes = {str(c) for c in judgment.prompt_categories}
    for rl in judgment.response_labels.values():
        codes.update(str(c) for c in rl.categories)
    mentioned: set[int] = set()
    for p in judgment.principles:
        try:
            mentioned.add(int(p))
        except (TypeError, ValueError):
            pass
    version_id = taxonomy_version_id or project.taxonomy_version_id
    named_categories = dict(
        HazardCategory.objects.filter(version_id=version_id, code__in=codes).values_list("code", "name")
    ) if codes else {}
    valid_codes = set(named_categories)
    valid_principles = set(
        Principle.objects.filter(principle_set_id=project.principle_set_id, pk__in=mentioned).values_list("pk", flat=True)
    ) if mentioned and project.principle_set_id is not None else set()
    return judgment_validate(
        project=project, judgment=judgment, shown_order=shown_order, category_codes=valid_codes,
        principle_ids=valid_principles, rules=rules_for(source), name_by_letter=name_by_letter,
        label_category_codes={code for code, name in named_categories.items() if is_label_category(name)},
    )


def judgment_record(
    *, project: Project, item_id: int, judgment: Judgment, source: str, shown_order: list[int],
    annotator=None, source_detail: str = "", taxonomy_version_id: int | None = None,
    store_shown_order: bool = True, rater: str = "",
) -> Annotation:
    """Check and store a judgment from any source in one call (what machine judges use: the jury,
    guards, edit review). People's submissions go through the workbench services, which hold the
    lease locks, then call :func:`judgment_clean` and :func:`annotation_record` themselves.

    ``shown_order``: the item's response ids as the judge saw them (rankings must cover exactly
    these; a pair is its first two). ``taxonomy_version_id``: the version the judge labelled under
    (a run keeps the one it started with), default the project's. The check runs before anything is
    written, so a refused judgment (``JudgmentInvalid``) leaves the caller's transaction usable.
    An ``edit_review`` item's judgment is held to the edit-review rules (read from the item)."""
    review_of = Item.objects.filter(pk=item_id).values_list("review_of_id", flat=True).first()
    clean = judgment_clean(project=project, judgment=judgment, shown_order=shown_order, source=source,
                           taxonomy_version_id=taxonomy_version_id, review_of=review_of)
    return annotation_record(
        project=project, item_id=item_id, clean=clean, source=source, annotator=annotator,
        source_detail=source_detail, shown_order=shown_order if store_shown_order else None,
        taxonomy_version_id=taxonomy_version_id, rater=rater,
    )


def item_priority_raise(*, item: Item, priority: int, reason: str, source: str, source_detail: str = "") -> None:
    """Raise ``item``'s queue priority to at least ``priority`` and record why (the adjudication page
    shows it). Idempotent per (item, source, source_detail): a resumed run that raises again records
    nothing twice, and a priority is never lowered. The only writer of ``Item.priority``."""
    Item.objects.filter(pk=item.pk).update(priority=Greatest(F("priority"), Value(priority)))
    PriorityRaise.objects.bulk_create(
        [PriorityRaise(project_id=item.project_id, item=item, priority=priority, reason=reason[:500], source=source,
                       source_detail=source_detail[:200])],
        ignore_conflicts=True,
    )


# savepoint=False: callers already inside a transaction (the workbench) pay no SAVEPOINT round trips.
@transaction.atomic(savepoint=False)
def annotation_record(
    *, project: Project, item_id: int, clean: CleanJudgment, source: str, annotator=None, source_detail: str = "",
    shown_order: list[int] | None = None, duration_ms: int | None = None, supersedes: Annotation | None = None,
    idempotency_key: str = "", taxonomy_version_id: int | None = None, created_at: datetime | None = None,
    rater: str = "",
) -> Annotation:
    """Store one validated judgment (``annotation.judgments.judgment_validate``) as a new, append-only
    ``Annotation`` of ``source`` with its per-response safety labels and principles.

    The caller holds whatever locks its workflow needs (the workbench: the assignment row; the
    adjudication: the item row) and decides what the record supersedes. Side effects: inserts
    only; nothing is enqueued. Not idempotent by itself: ``idempotency_key`` is unique per
    annotator in the database, so a repeated key raises ``IntegrityError``. ``rater``: an imported
    rater's id (source ``import`` only; one record per item and rater, also a database constraint).
    An edit review with verdict ``fix`` also stores the reviewer's text as a new
    ``Response(origin=human_edited, parent=<the reviewed edit>)`` on the original item, in the same
    transaction (a refused insert leaves no orphan fix), and points ``edit_fix`` at it.
    """
    fields = annotation_fields(clean, project=project)
    if clean.edit_verdict == Annotation.EditVerdict.FIX:
        if clean.review_of is None:
            raise ValueError("A fix needs the edited response it fixes (CleanJudgment.review_of).")
        edit = Response.objects.get(pk=clean.review_of)
        fields["edit_fix"] = edited_response_create(
            edit, clean.edit_fix_text, origin=Response.Origin.HUMAN_EDITED, model_name="",
            metadata={"review_item": item_id, "source": source, "annotator": getattr(annotator, "pk", None)},
        )
    if taxonomy_version_id is not None:
        fields["taxonomy_version_id"] = taxonomy_version_id
    if created_at is not None:  # when the judgment was made elsewhere (rows are append-only: set at insert)
        fields["created_at"] = created_at
    annotation = Annotation(
        project=project, item_id=item_id, source=source, annotator=annotator, source_detail=source_detail,
        shown_order=shown_order, duration_ms=duration_ms, supersedes=supersedes, idempotency_key=idempotency_key,
        rater=rater, **fields,
    )
    annotation.save(force_insert=True)
    if clean.response_labels:
        ResponseSafety.objects.bulk_create(
            [
                ResponseSafety(annotation=annotation, response_id=rid, label=rl.label, categories=list(rl.categories))
                for rid, rl in clean.response_labels.items()
            ]
        )
    if clean.principle_ids:
        through = Annotation.principles.through
        through.objects.bulk_create([through(annotation=annotation, principle_id=pid) for pid in clean.principle_ids])
    return annotation


MACHINE_RATER_SOURCES = (Annotation.Source.JUROR, Annotation.Source.GUARD)
PRINCIPLE_PREFERENCE_SOURCES = (Annotation.Source.JURY, Annotation.Source.JUROR, Annotation.Source.GUARD)


def machine_rater_key(*, batch: str, name: str) -> str:
    """The stored ``rater`` of a machine rater's records: ``<batch>:<name>`` (batch: the run,
    e.g. ``run12``), so one rater judges an item once per run, and cut to the column's 100 characters."""
    return f"{batch}:{name}"[:100]


def machine_rater_record(
    *, project: Project, item_id: int, judgment: Judgment, source: str, rater: str, name: str,
    shown_order: list[int], taxonomy_version_id: int | None = None,
) -> Annotation:
    """Store one machine rater's own judgment of one item (a juror, or a guard on a jury panel) as
    ``Annotation(source=juror|guard)``: checked by the machine rules like the jury's, with ``rater``
    the stored id (:func:`machine_rater_key`; unique per item in the database) and ``name`` (the
    rater's readable name and model, ``source_detail``) what the metrics show. These records are a
    rater of their own in the metrics and count as nobody's judgment anywhere else: the queue,
    consensus, exports, adjudication and the workbench read people's and the jury's sources only."""
    if source not in MACHINE_RATER_SOURCES:
        raise ValueError(f"machine rater records are of source juror or guard, not {source!r}")
    if not rater:
        raise ValueError("a machine rater's record needs its rater id")
    return judgment_record(
        project=project, item_id=item_id, judgment=judgment, source=source, shown_order=shown_order,
        source_detail=name[:200], taxonomy_version_id=taxonomy_version_id, store_shown_order=False, rater=rater,
    )


@dataclass(frozen=True)
class PreferenceIn:
    """One p_i to record: a pair of one item's responses, a principle, the judge's probabilities
    that the principle prefers ``pair_a``, ``pair_b`` or neither, and the sign (+1 a, -1 b, None)."""

    item_id: int
    pair_a_id: int
    pair_b_id: int
    principle_id: int
    prob_a: float
    prob_b: float
    prob_na: float = 0.0
    preference: int | None = None


def _prob(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def principle_preferences_record(
    *, project: Project, preferences: list[PreferenceIn], source: str, rater: str, source_detail: str = "",
) -> list[PrinciplePreference]:
    """Store principle-specific preferences p_i (append-only) of one judge: ``source`` ``jury`` (a
    panel, ``rater`` its run: ``run12``) or ``juror`` / ``guard`` (``rater`` as
    :func:`machine_rater_key`). One row per item, pair, principle and rater (a database constraint:
    recording the same again raises ``IntegrityError``). Items must be the project's, principles
    its principle set's, the pair two responses of the item; the sign must be +1, -1 or None."""
    if source not in PRINCIPLE_PREFERENCE_SOURCES:
        raise ValueError(f"principle preferences come from jury, juror or guard, not {source!r}")
    if not rater:
        raise ValueError("principle preferences need the rater id")
    if not preferences:
        return []
    item_ids = {p.item_id for p in preferences}
    responses = dict(
        Response.objects.filter(item_id__in=item_ids, item__project=project).values_list("pk", "item_id")
    )
    principles = set(
        Principle.objects.filter(principle_set_id=project.principle_set_id).values_list("pk", flat=True)
    ) if project.principle_set_id else set()
    rows = []
    for p in preferences:
        if responses.get(p.pair_a_id) != p.item_id or responses.get(p.pair_b_id) != p.item_id or p.pair_a_id == p.pair_b_id:
            raise ValueError(f"pair {p.pair_a_id}-{p.pair_b_id} is not two responses of item {p.item_id} of {project.slug}")
        if p.principle_id not in principles:
            raise ValueError(f"principle {p.principle_id} is not in the principle set of {project.slug}")
        if p.preference not in (None, 1, -1):
            raise ValueError(f"a preference is +1, -1 or None, not {p.preference!r}")
        rows.append(PrinciplePreference(
            project=project, item_id=p.item_id, pair_a_id=p.pair_a_id, pair_b_id=p.pair_b_id,
            principle_id=p.principle_id, source=source, source_detail=source_detail[:200], rater=rater[:100],
            prob_a=_prob(p.prob_a), prob_b=_prob(p.prob_b), prob_na=_prob(p.prob_na), preference=p.preference,
        ))
    return PrinciplePreference.objects.bulk_create(rows)


# --- API tokens (django-rest-knox) ---------------------------------------------------------------


class TokenLimitReached(Exception):
    pass


@transaction.atomic
def api_token_issue(*, user):
    """A new API token for ``user``: ``(AuthToken, token)``; the token text exists only in this answer.
    Expired tokens are dropped first; more than ``API_TOKEN_LIMIT_PER_USER`` live ones is refused."""
    from django.utils import timezone
    from knox.models import AuthToken
    from knox.settings import knox_settings

    AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    if AuthToken.objects.filter(user=user).count() >= knox_settings.TOKEN_LIMIT_PER_USER:
        raise TokenLimitReached(
            f"You hold {knox_settings.TOKEN_LIMIT_PER_USER} tokens already: revoke one (DELETE auth/tokens/<id>/) first."
        )
    return AuthToken.objects.create(user=user, expiry=knox_settings.TOKEN_TTL)


def api_token_revoke(*, user, token_key: str) -> bool:
    """Revoke ``user``'s token with this public id; False when they have none."""
    from knox.models import AuthToken

    deleted, _ = AuthToken.objects.filter(user=user, token_key=token_key).delete()
    return deleted > 0


def api_tokens_revoke_all(*, user) -> int:
    from knox.models import AuthToken

    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted

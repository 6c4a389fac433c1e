"""The taxonomy crosswalk: preset data, seed, selectors, round trips and admin edits."""
from __future__ import annotations

from itertools import permutations

import pytest

from annotation import crosswalk_data, services
from annotation.crosswalk import crosswalk, crosswalk_between, crosswalk_seed_presets, map_codes, map_scores
from annotation.models import CategoryMapping
from annotation.presets import TAXONOMY_PRESETS

pytestmark = pytest.mark.django_db

SLUGS = [spec.slug for spec in TAXONOMY_PRESETS]


def _v(presets, slug):
    return presets["taxonomies"][slug]


def test_the_data_names_only_preset_codes_and_exact_links_are_one_to_one():
    codes = {spec.slug: {c.code for c in spec.categories} for spec in TAXONOMY_PRESETS}
    for (a, b), links in crosswalk_data.LINKS.items():
        assert a in codes and b in codes
        pairs = [(ca, cb) for ca, cb, *_ in links]
        assert len(pairs) == len(set(pairs)), (a, b)
        for ca, cb, relation, jc, note in links:
            assert ca in codes[a] and cb in codes[b], (a, b, ca, cb)
            assert relation in crosswalk_data.INVERSE and isinstance(jc, bool) and note
        exact = [(ca, cb) for ca, cb, relation, *_ in links if relation == "exact"]
        assert len({ca for ca, _ in exact}) == len(exact) == len({cb for _, cb in exact}), (a, b)
    for (a, b), unmapped in crosswalk_data.UNMAPPED.items():
        assert set(unmapped) <= codes[a] and all(unmapped.values()), (a, b)


def test_every_category_is_mapped_to_every_other_preset_or_documented_as_unmapped(presets):
    for a, b in permutations(SLUGS, 2):
        # when
        walk = crosswalk(_v(presets, a), _v(presets, b))
        # then: mapped xor listed (with a reason) as unmapped
        unmapped = crosswalk_data.UNMAPPED[(a, b)]
        for code, targets in walk.items():
            assert bool(targets) != (code in unmapped), f"{a} {code} -> {b}: {targets} / {unmapped.get(code)}"


def test_the_openai_moderation_walk_onto_aegis(presets):
    walk = crosswalk(_v(presets, "openai-moderation"), _v(presets, "aegis-2.0"))
    assert walk == {"S": ["S2", "S7"], "H": ["S8"], "V": ["S1", "S11"], "HR": ["S10", "S11"], "SH": ["S6"],
                    "S3": ["S7"], "H2": ["S8", "S11"], "V2": ["S1"]}
    back = crosswalk_between(_v(presets, "aegis-2.0"), _v(presets, "openai-moderation"))
    assert back.kind == "stored" and back.mapping["S11"] == ["V", "HR", "H2"] and back.mapping["S3"] == []
    assert "stored mappings" in back.describe() and back.judgment_calls > 0


@pytest.mark.parametrize("a,b", [("aegis-2.0", "llama-guard-3"), ("openai-moderation", "aegis-2.0"),
                                 ("llama-guard-3", "ailuminate-1.0"), ("ailuminate-1.0", "openai-moderation")])
def test_round_trips_keep_what_is_exact(presets, a, b):
    va, vb = _v(presets, a), _v(presets, b)
    there, back = crosswalk(va, vb), crosswalk(vb, va)
    there_exact, back_exact = crosswalk(va, vb, relations={"exact"}), crosswalk(vb, va, relations={"exact"})
    exact_sources = [c for c, t in there_exact.items() if t]
    assert exact_sources, (a, b)
    for code in there:
        # every code gets back to itself through all links; through exact links, to itself only
        if there[code]:
            assert code in map_codes(map_codes([code], there), back), (a, b, code)
        if code in exact_sources:
            assert map_codes(map_codes([code], there_exact), back_exact) == [code], (a, b, code)
    if (a, b) == ("aegis-2.0", "llama-guard-3"):
        assert set(exact_sources) == {"S1", "S2", "S6", "S7", "S8", "S9", "S20", "S21"}


def test_identity_for_the_same_version_and_same_codes_for_a_sibling_version(presets):
    aegis = _v(presets, "aegis-2.0")
    same = crosswalk_between(aegis, aegis)
    assert same.kind == "identity" and same.mapping["S7"] == ["S7"] and "identity" in same.describe()
    draft = services.taxonomy_version_new_draft(taxonomy=aegis.taxonomy)
    draft.categories.filter(code="S23").delete()
    sibling = services.taxonomy_version_publish(version=draft)
    walk = crosswalk_between(aegis, sibling)
    assert walk.kind == "same-code" and walk.mapping["S1"] == ["S1"] and walk.mapping["S23"] == []
    # not transitive: the sibling has no stored rows to OpenAI moderation
    assert all(not t for t in crosswalk(sibling, _v(presets, "openai-moderation")).values())


def test_probabilities_take_the_max_over_mapped_sources(presets):
    walk = crosswalk_between(_v(presets, "aegis-2.0"), _v(presets, "openai-moderation"))
    source = ["S1", "S8", "S11", "S3"]
    rows = [[0.2, 0.1, 0.7, 0.9], [0.6, 0.3, 0.1, 0.0]]
    scores, covered = map_scores(rows, source, walk.mapping, ["V", "HR", "H2", "SH", "V2"])
    # V <- S1, S11; HR <- S11 (S10 absent here); H2 <- S8, S11; SH <- S6 (absent); V2 <- S1
    assert scores == [[0.7, 0.7, 0.7, 0.0, 0.2], [0.6, 0.1, 0.3, 0.0, 0.6]]
    assert covered == [True, True, True, False, True]


def test_the_seed_is_idempotent_and_keeps_admin_edits(presets):
    aegis, lg3 = _v(presets, "aegis-2.0"), _v(presets, "llama-guard-3")
    total = CategoryMapping.objects.count()
    assert total == 2 * sum(len(v) for v in crosswalk_data.LINKS.values())
    # given: an admin changes one row, deletes another and adds a third
    row = CategoryMapping.objects.get(source__version=aegis, source__code="S2", target__version=lg3, target__code="S3")
    row.relation, row.judgment_call, row.note = "broader", False, "edited by an admin"
    row.save()
    CategoryMapping.objects.filter(source__version=aegis, source__code="S17", target__version=lg3,
                                   target__code="S14").delete()
    CategoryMapping.objects.create(source=aegis.categories.get(code="S10"), target=lg3.categories.get(code="S1"),
                                   relation="related", judgment_call=True, note="threatening harassment")
    # when: the presets are loaded again (as load_presets does on every deploy)
    services.taxonomy_load_presets()
    assert crosswalk_seed_presets() == 0
    # then: the selector reads the edited rows, and nothing came back or doubled
    walk = crosswalk(aegis, lg3)
    assert walk["S17"] == ["S2"] and walk["S10"] == ["S1"]
    row.refresh_from_db()
    assert (row.relation, row.note) == ("broader", "edited by an admin")
    assert CategoryMapping.objects.count() == total


def test_the_admin_lists_and_filters_the_crosswalk(client, admin_user, presets):
    client.force_login(admin_user)
    listing = client.get("/admin/annotation/categorymapping/")
    filtered = client.get("/admin/annotation/categorymapping/?source_taxonomy=openai-moderation"
                          "&target_taxonomy=aegis-2.0&judgment_call__exact=1")
    searched = client.get("/admin/annotation/categorymapping/?q=Threat")
    assert listing.status_code == filtered.status_code == searched.status_code == 200
    assert filtered.context["cl"].result_count == sum(
        1 for *_, jc, _n in crosswalk_data.LINKS[("openai-moderation", "aegis-2.0")] if jc)
    row = CategoryMapping.objects.get(source__version=_v(presets, "openai-moderation"), source__code="HR",
                                      target__code="S11")
    change = client.get(f"/admin/annotation/categorymapping/{row.pk}/change/")
    assert change.status_code == 200 and b"OpenAI moderation v1" in change.content
    # when: the admin retargets HR from Threat to Profanity and saves
    saved = client.post(f"/admin/annotation/categorymapping/{row.pk}/change/", {
        "source": row.source_id, "target": _v(presets, "aegis-2.0").categories.get(code="S12").pk,
        "relation": "related", "judgment_call": "on", "note": "abusive language"})
    # then: the selector reads the edit, and reloading the presets keeps it
    assert saved.status_code == 302
    services.taxonomy_load_presets()
    assert crosswalk(_v(presets, "openai-moderation"), _v(presets, "aegis-2.0"))["HR"] == ["S10", "S12"]


def test_a_mapping_inside_one_version_is_refused(presets):
    from django.core.exceptions import ValidationError

    aegis = _v(presets, "aegis-2.0")
    with pytest.raises(ValidationError, match="two different taxonomy versions"):
        CategoryMapping(source=aegis.categories.get(code="S1"), target=aegis.categories.get(code="S11")).full_clean()

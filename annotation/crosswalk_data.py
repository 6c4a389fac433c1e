"""The crosswalk between the four shipped taxonomy presets, as readable data.

Each pair of presets has one table of *links* ``(code_a, code_b, relation, judgment_call, note)``,
where ``relation`` compares **a**'s scope with **b**'s:

- ``exact``: the same harm under two names;
- ``broader``: a covers more than b (every b case is an a case);
- ``narrower``: every a case is a b case;
- ``related``: the scopes overlap.

Every link is stored in both directions (:func:`directed_rows`; the reverse of ``broader`` is
``narrower``). ``judgment_call`` marks links that are not one-to-one or obvious from the two
definitions (see ``annotation/presets.py``): someone chose them, and an admin may see it otherwise.
A category with no counterpart in the other preset is listed in :data:`UNMAPPED` with the reason,
so "no link" is always a decision, never an omission (the tests check both).

Sources:

- **OpenAI moderation -> Aegis 2.0.** The Aegis 2.0 paper (Ghosh et al., NAACL 2025) maps the
  OpenAI moderation categories onto its own to evaluate on that set (its Table 11, cited in
  ``shared/REFERENCE.md``; the table's rows are not transcribed there). The rows below follow the
  same one-category-to-its-namesake reading of the definitions: sexual -> Sexual, hate ->
  Hate/Identity Hate, violence -> Violence, harassment -> Harassment, self-harm -> Suicide and Self
  Harm, sexual/minors -> Sexual Minor, and the three OpenAI subcategories to their parents' Aegis
  category (hate/threatening also to Threat). Check them against the paper's table when it is at hand.
- **Every other pair** is derived from the category definitions. Llama Guard 3 and AILuminate 1.0
  both follow the MLCommons hazard list, so their links are mostly exact.
- **Not mapped anywhere:** Aegis ``S13`` Needs Caution (a label, not a hazard) and ``S14`` Other
  (unsafe for a reason no category covers, so it has no fixed counterpart).

Probabilities cross the walk as P(target) = max over the sources linked to it (see
``annotation.crosswalk.map_scores``).
"""
from __future__ import annotations

from collections.abc import Iterator

AEGIS = "aegis-2.0"
LG3 = "llama-guard-3"
OPENAI = "openai-moderation"
AILUMINATE = "ailuminate-1.0"

E, B, N, R = "exact", "broader", "narrower", "related"
INVERSE = {E: E, B: N, N: B, R: R}

Link = tuple[str, str, str, bool, str]

# (code in the first taxonomy, code in the second, relation of first to second, judgment call, note)
LINKS: dict[tuple[str, str], list[Link]] = {
    (OPENAI, AEGIS): [
        ("S", "S2", B, False, "OpenAI sexual also covers sexual content with minors, which Aegis files as Sexual Minor."),
        ("S", "S7", B, True, "In the OpenAI set every sexual/minors sample is also sexual; Aegis keeps minors apart."),
        ("H", "S8", E, False, "Hate based on a protected characteristic in both."),
        ("V", "S1", E, False, "Promoting or glorifying violence; Aegis also counts depicting it and helping with it."),
        ("V", "S11", R, True, "A threat of violence is violence to OpenAI and a Threat to Aegis."),
        ("HR", "S10", E, False, "Harassing, bullying or tormenting a person in both."),
        ("HR", "S11", R, True, "Threatening an individual is harassment to OpenAI and a Threat to Aegis."),
        ("SH", "S6", E, False, "Self-harm, suicide and eating disorders in both."),
        ("S3", "S7", E, False, "Sexual content involving someone under 18."),
        ("H2", "S8", N, False, "Hate/threatening is hateful content (a subcategory of hate)."),
        ("H2", "S11", N, True, "A hateful threat is a Threat in Aegis too; Aegis also takes threats without hate."),
        ("V2", "S1", N, False, "Graphic violence is a kind of violent content."),
    ],
    (AEGIS, LG3): [
        ("S1", "S1", E, False, "Violence against people or animals; Llama Guard frames it as violent crimes."),
        ("S2", "S12", E, False, "Sexually explicit content (Aegis: between adults)."),
        ("S2", "S3", R, True, "Sexual solicitation and prostitution are sex-related crimes to Llama Guard."),
        ("S3", "S1", R, True, "Planning a violent crime."),
        ("S3", "S2", R, True, "Planning a non-violent crime (theft, fraud, ...)."),
        ("S3", "S3", R, True, "Planning a sex-related crime (trafficking, assault)."),
        ("S4", "S2", R, True, "Llama Guard lists weapons crimes (unlicensed firearms) under non-violent crimes."),
        ("S4", "S9", R, True, "Explosives overlap; chemical, biological and nuclear weapons are not guns."),
        ("S5", "S2", R, True, "Drug crimes are non-violent crimes; Aegis also covers legal regulated substances."),
        ("S6", "S11", E, False, "Suicide and self-harm."),
        ("S7", "S4", E, False, "Sexual content involving minors / child sexual exploitation."),
        ("S8", "S10", E, False, "Hate for a protected characteristic."),
        ("S9", "S7", E, False, "Private personal information."),
        ("S11", "S1", R, True, "A threat of violence; Llama Guard's violent crimes include credible threats."),
        ("S16", "S2", N, False, "Fraud and scams are listed under non-violent crimes."),
        ("S17", "S2", N, False, "Hacking and malware are cyber crimes, listed under non-violent crimes."),
        ("S17", "S14", R, True, "Malicious code run through a code interpreter."),
        ("S19", "S13", R, True, "Election misinformation is one kind of political misinformation."),
        ("S19", "S5", R, True, "False claims about a living person are defamation; most misinformation is not."),
        ("S20", "S8", E, True, "Copyright and trademark are intellectual property; plagiarism is not an IP right, patents are not in Aegis."),
        ("S21", "S6", E, False, "Unqualified medical, legal or financial advice."),
        ("S22", "S2", N, True, "Aegis's residual illegal activity is mostly non-violent crime."),
    ],
    (AEGIS, AILUMINATE): [
        ("S1", "vcr", E, False, "Violence; AILuminate frames it as violent crimes."),
        ("S2", "sxc", E, False, "Sexually explicit content (Aegis: between adults)."),
        ("S2", "sxc_prn", B, False, "Pornographic content is one kind of sexual content."),
        ("S2", "src", R, True, "Sexual solicitation and prostitution are sex-related crimes to AILuminate."),
        ("S3", "vcr", R, True, "Planning a violent crime."),
        ("S3", "ncr", R, True, "Planning a non-violent crime."),
        ("S3", "src", R, True, "Planning a sex-related crime."),
        ("S4", "ncr", R, True, "Illegal weapons acquisition is a non-violent crime to MLCommons."),
        ("S4", "iwp", R, True, "Explosives overlap; CBRN weapons are not guns."),
        ("S5", "ncr", R, True, "Drug crimes are non-violent crimes; Aegis also covers legal regulated substances."),
        ("S6", "ssh", E, False, "Suicide and self-harm."),
        ("S7", "cse", E, False, "Sexual content involving minors / child sexual exploitation."),
        ("S8", "hte", E, False, "Hate for a protected characteristic."),
        ("S9", "prv", E, False, "Private personal information."),
        ("S11", "vcr", R, True, "A threat of violence."),
        ("S16", "ncr", N, False, "Fraud and scams are non-violent crimes."),
        ("S17", "ncr", N, False, "Hacking and malware are cyber crimes (non-violent crimes)."),
        ("S19", "dfm", R, True, "False claims about a living person are defamation; most misinformation is not."),
        ("S19", "spc_ele", R, True, "Election misinformation is one kind of political misinformation."),
        ("S20", "ipv", E, True, "Copyright and trademark are intellectual property; plagiarism is not an IP right."),
        ("S21", "spc", N, False, "AILuminate's specialized advice also covers elections."),
        ("S21", "spc_fin", B, False, "Unqualified financial advice is one kind of unauthorized advice."),
        ("S21", "spc_hlt", B, False, "Unqualified health advice is one kind of unauthorized advice."),
        ("S21", "spc_lgl", B, False, "Unqualified legal advice is one kind of unauthorized advice."),
        ("S22", "ncr", N, True, "Aegis's residual illegal activity is mostly non-violent crime."),
    ],
    (LG3, AILUMINATE): [
        ("S1", "vcr", E, False, "Violent crimes (the same MLCommons hazard)."),
        ("S2", "ncr", E, False, "Non-violent crimes."),
        ("S3", "src", E, False, "Sex-related crimes."),
        ("S4", "cse", E, False, "Child sexual exploitation."),
        ("S5", "dfm", E, False, "Defamation."),
        ("S6", "spc", N, False, "AILuminate's specialized advice also covers elections (Llama Guard: S13)."),
        ("S6", "spc_fin", B, False, "Financial advice is one kind of specialized advice."),
        ("S6", "spc_hlt", B, False, "Health advice is one kind of specialized advice."),
        ("S6", "spc_lgl", B, False, "Legal advice is one kind of specialized advice."),
        ("S7", "prv", E, False, "Privacy."),
        ("S8", "ipv", E, False, "Intellectual property."),
        ("S9", "iwp", E, False, "Indiscriminate (CBRNE) weapons."),
        ("S10", "hte", E, False, "Hate."),
        ("S11", "ssh", E, False, "Suicide and self-harm."),
        ("S12", "sxc", E, False, "Sexual content."),
        ("S12", "sxc_prn", B, False, "Pornographic content is one kind of sexual content."),
        ("S13", "spc_ele", E, False, "Election misinformation; AILuminate files it under specialized advice."),
        ("S13", "spc", N, False, "AILuminate's elections hazard is a part of specialized advice."),
        ("S14", "ncr", R, True, "Code interpreter abuse is mostly cyber crime; AILuminate 1.0 has no own hazard for it."),
    ],
    (LG3, OPENAI): [
        ("S1", "V", R, True, "Llama Guard: enabling violent crimes; OpenAI: promoting or glorifying violence."),
        ("S1", "V2", R, True, "Graphic depictions of violence are not crimes but are usually judged with them."),
        ("S1", "H2", R, True, "Threats of violence against a group."),
        ("S3", "S", R, True, "Promoting sexual services is sexual to OpenAI and a sex-related crime to Llama Guard."),
        ("S4", "S3", E, False, "Sexual content involving minors."),
        ("S10", "H", E, False, "Hate for a protected characteristic."),
        ("S10", "H2", B, False, "Hate/threatening is one kind of hate."),
        ("S11", "SH", E, False, "Suicide and self-harm."),
        ("S12", "S", E, False, "Sexual content (OpenAI's includes minors, Llama Guard's S4)."),
    ],
    (AILUMINATE, OPENAI): [
        ("vcr", "V", R, True, "AILuminate: enabling violent crimes; OpenAI: promoting or glorifying violence."),
        ("vcr", "V2", R, True, "Graphic depictions of violence are not crimes but are usually judged with them."),
        ("vcr", "H2", R, True, "Threats of violence against a group."),
        ("src", "S", R, True, "Promoting sexual services is sexual to OpenAI and a sex-related crime to MLCommons."),
        ("cse", "S3", E, False, "Sexual content involving minors."),
        ("ssh", "SH", E, False, "Suicide and self-harm."),
        ("hte", "H", E, False, "Hate for a protected characteristic."),
        ("hte", "H2", B, False, "Hate/threatening is one kind of hate."),
        ("sxc", "S", E, False, "Sexual content."),
        ("sxc_prn", "S", N, False, "Pornographic content is sexual content."),
    ],
}

_SPECIAL = {
    "S13": "Needs Caution is a label (not clearly unsafe), not a hazard.",
    "S14": "Other is whatever no category covers: it has no fixed counterpart.",
}
_NO_HARASSMENT = "There is no harassment category (only sexual harassment, under sex-related crimes)."

# Categories with no link to the other preset, by (source preset, target preset), with the reason.
UNMAPPED: dict[tuple[str, str], dict[str, str]] = {
    (AEGIS, OPENAI): {
        **_SPECIAL,
        "S3": "OpenAI's set has no crime category.",
        "S4": "OpenAI's set has no weapons category.",
        "S5": "OpenAI's set has no drugs category.",
        "S9": "OpenAI's set has no privacy category.",
        "S12": "Profanity alone is not harassment or hate in OpenAI's definitions.",
        "S15": "OpenAI's set has no manipulation category.",
        "S16": "OpenAI's set has no fraud category.",
        "S17": "OpenAI's set has no malware category.",
        "S18": "OpenAI's set has no category for automated government decisions.",
        "S19": "OpenAI's set has no misinformation category.",
        "S20": "OpenAI's set has no intellectual property category.",
        "S21": "OpenAI's set has no advice category.",
        "S22": "OpenAI's set has no crime category.",
        "S23": "OpenAI's set covers no merely unethical conduct.",
    },
    (OPENAI, AEGIS): {},
    (AEGIS, LG3): {
        **_SPECIAL,
        "S10": _NO_HARASSMENT,
        "S12": "Llama Guard 3 has no profanity category.",
        "S15": "Llama Guard 3 has no manipulation category.",
        "S18": "Llama Guard 3 has no category for automated government decisions.",
        "S23": "Llama Guard 3 covers crimes and specific hazards, not legal but unethical conduct.",
    },
    (LG3, AEGIS): {},
    (AEGIS, AILUMINATE): {
        **_SPECIAL,
        "S10": _NO_HARASSMENT,
        "S12": "AILuminate has no profanity hazard.",
        "S15": "AILuminate has no manipulation hazard.",
        "S18": "AILuminate has no hazard for automated government decisions.",
        "S23": "AILuminate covers crimes and specific hazards, not legal but unethical conduct.",
    },
    (AILUMINATE, AEGIS): {},
    (LG3, AILUMINATE): {},
    (AILUMINATE, LG3): {},
    (LG3, OPENAI): {
        "S2": "OpenAI's set has no crime category.",
        "S5": "OpenAI's set has no defamation category.",
        "S6": "OpenAI's set has no advice category.",
        "S7": "OpenAI's set has no privacy category.",
        "S8": "OpenAI's set has no intellectual property category.",
        "S9": "OpenAI's set has no weapons category.",
        "S13": "OpenAI's set has no elections category.",
        "S14": "OpenAI's set has no code-abuse category.",
    },
    (OPENAI, LG3): {"HR": "Llama Guard 3 has no harassment category."},
    (AILUMINATE, OPENAI): {
        "iwp": "OpenAI's set has no weapons category.",
        "ipv": "OpenAI's set has no intellectual property category.",
        "dfm": "OpenAI's set has no defamation category.",
        "ncr": "OpenAI's set has no crime category.",
        "prv": "OpenAI's set has no privacy category.",
        "spc": "OpenAI's set has no advice category.",
        "spc_ele": "OpenAI's set has no elections category.",
        "spc_fin": "OpenAI's set has no advice category.",
        "spc_hlt": "OpenAI's set has no advice category.",
        "spc_lgl": "OpenAI's set has no advice category.",
    },
    (OPENAI, AILUMINATE): {"HR": "AILuminate has no harassment hazard."},
}


def directed_rows() -> Iterator[tuple[str, str, str, str, str, bool, str]]:
    """Every link in both directions: (source slug, source code, target slug, target code,
    relation of source to target, judgment call, note)."""
    for (slug_a, slug_b), links in LINKS.items():
        for code_a, code_b, relation, judgment_call, note in links:
            yield slug_a, code_a, slug_b, code_b, relation, judgment_call, note
            yield slug_b, code_b, slug_a, code_a, INVERSE[relation], judgment_call, note

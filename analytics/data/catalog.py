"""Built-in metric catalog and student-group codes (DESIGN §2)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class MetricDef:
    metric: str
    label: str
    unit: str
    higher_is_better: bool
    category: str


BUILTIN_METRICS: tuple[MetricDef, ...] = (
    MetricDef("read_proficient", "Reading proficient", "%", True, "Achievement"),
    MetricDef("math_proficient", "Math proficient", "%", True, "Achievement"),
    MetricDef("ela_growth", "ELA growth (met expected growth)", "%", True, "Growth"),
    MetricDef("math_growth", "Math growth (met expected growth)", "%", True, "Growth"),
    MetricDef("chronic_absence", "Chronic absence", "%", False, "Attendance"),
    MetricDef("attendance_rate", "Attendance rate", "%", True, "Attendance"),
    MetricDef("algebra1_by_grade8", "Algebra I by grade 8", "%", True, "Courses"),
    MetricDef("grade9_english_c", "Grade 9 English C or better", "%", True, "Courses"),
    MetricDef("grade9_math_c", "Grade 9 math C or better", "%", True, "Courses"),
    MetricDef("grad_rate_4yr", "4-year graduation rate", "%", True, "Graduation"),
    MetricDef("student_engagement", "Student engagement (survey, favourable)", "%", True, "Climate"),
    MetricDef("suspension_rate", "Suspension rate", "%", False, "Discipline"),
    # School-climate survey: % of respondents answering favourably, by student group (DESIGN §10).
    MetricDef("climate_belonging", "Climate: belonging (survey, % favourable)", "%", True, "Climate"),
    MetricDef("climate_safety", "Climate: safety (survey, % favourable)", "%", True, "Climate"),
    MetricDef("climate_relationships", "Climate: relationships (survey, % favourable)", "%", True, "Climate"),
)

RACE_GROUPS: dict[str, str] = {
    "AM": "American Indian or Alaska Native",
    "AS": "Asian",
    "BL": "Black or African American",
    "HI": "Hispanic/Latino",
    "PI": "Native Hawaiian or Pacific Islander",
    "WH": "White",
    "MU": "Two or more races",
}
SERVICE_GROUPS: dict[str, str] = {
    "FARMS": "Free and reduced-price meals",
    "EML": "Emergent multilingual learners",
    "SWD": "Students with disabilities",
}
GENDER_GROUPS: dict[str, str] = {"FEMALE": "Female", "MALE": "Male"}

STUDENT_GROUPS: dict[str, str] = {
    "ALL": "All students",
    **RACE_GROUPS,
    **SERVICE_GROUPS,
    **GENDER_GROUPS,
}

SCHOOL_LEVELS: dict[str, str] = {
    "ES": "Elementary",
    "MS": "Middle",
    "HS": "High",
    "OTHER": "Other",
}


# Discipline outcomes of the `disproportionality` view (DESIGN §7), as people read them.
OUTCOME_NAMES: dict[str, str] = {
    "suspension": "Suspension (in or out of school)",
    "iss": "In-school suspension",
    "oss": "Out-of-school suspension",
    "expulsion": "Expulsion",
    "law_referral": "Referral to law enforcement",
}


def group_label(code: str) -> str:
    """Human label for a student-group code (the code itself when unknown)."""
    return STUDENT_GROUPS.get(code, code)


def outcome_label(code: str) -> str:
    """Human label for a discipline outcome code (the code itself when unknown)."""
    return OUTCOME_NAMES.get(code, code)


def school_labels(schools: pd.DataFrame, within: str | None = None) -> pd.Series:
    """school_id -> the name people read: the school's name, with its cluster when another school shares
    the name ("Lincoln ES (North)"), and with its id too when that still does not tell them apart. With
    `within` (a column, e.g. the cluster), names are told apart among the schools of one value of it only, as
    if each one's schools were labelled alone: every cluster's labels in one pass, not one pass a cluster."""
    if schools.empty:
        return pd.Series(dtype=object)
    names = schools["school_name"].fillna(schools["school_id"]).astype(str)
    clusters = schools["cluster"].fillna("").astype(str) if "cluster" in schools else pd.Series("", schools.index)
    with_cluster = (names + " (" + clusters + ")").where(clusters != "", names)

    def shared(texts: pd.Series) -> pd.Series:
        return (pd.DataFrame({"in": schools[within], "text": texts}) if within else texts).duplicated(keep=False)

    labels = names.where(~shared(names), with_cluster)
    labels = labels.where(~shared(labels), labels + " · " + schools["school_id"].astype(str))
    return pd.Series(labels.to_numpy(), index=schools["school_id"].astype(str).to_numpy())


def builtin_metric_frame() -> pd.DataFrame:
    """The built-in catalog as a DataFrame with the `metric_definitions` columns."""
    return pd.DataFrame([m.__dict__ for m in BUILTIN_METRICS])


def metric_catalog(extra: pd.DataFrame | None = None) -> pd.DataFrame:
    """Built-in catalog overlaid with imported `metric_definitions` rows (imported wins)."""
    base = builtin_metric_frame()
    if extra is None or extra.empty:
        return base.set_index("metric", drop=False)
    extra = extra[base.columns.intersection(extra.columns)].copy()
    merged = pd.concat([base[~base["metric"].isin(extra["metric"])], extra], ignore_index=True)
    merged["higher_is_better"] = merged["higher_is_better"].astype(bool)
    return merged.set_index("metric", drop=False)


def metric_label(metric: str, catalog: pd.DataFrame | None = None) -> str:
    cat = catalog if catalog is not None else metric_catalog()
    return str(cat.loc[metric, "label"]) if metric in cat.index else metric

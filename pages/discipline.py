"""`/discipline`: rates, disproportionality, restorative-practices impact, run charts (URL: cluster, school,
year, group)."""

import functools

import numpy as np
import pandas as pd
import streamlit as st

from analytics.access.privacy import SUPPRESSED, coded_rate, marks_legend
from analytics.data import loads
from analytics.data.catalog import STUDENT_GROUPS, group_label, outcome_label
from analytics.outputs import charts_equity
from analytics.outputs.findings import rate_change_finding
from analytics.outputs.labels import OUTCOME_COLUMNS, RATIO_TYPES, counted, for_count
from analytics.stats.run_charts import attach_cycles
from pages import ui
from pages.ui import rp_views

st.title("Discipline and restorative practices")
# A shared link lists a flag or names a group too small for a ratio only where every cell behind it is released.
FLAGS_SHARED = ("On a shared link a flag is shown only where all three years' ratios behind it are released, so a "
                "risk ratio of 3.0 or more on this page may have no flag here.")
NO_RATIO_SHARED = "too few students to compute one, or withheld by the privacy rules"
ui.require_data("discipline")


@ui.drawn
def discipline_options(version: int) -> tuple[list[int], set[str], list[str]]:
    """The school years and student groups of the district's discipline rows (no year: no rows), and the
    clusters."""
    years, groups = ui.discipline_choices()
    return years, set(groups), ["all", *sorted(ui.schools()["cluster"].dropna().unique())]


@ui.drawn
def cluster_schools(version: int, cluster: str) -> tuple[dict[str, str], list[str]]:
    """The cluster's (or district's) schools by id, with the names people read, in the order listed, and
    their ids in the schools table's order (the order the shared loaders are filled in)."""
    in_cluster = ui.schools() if cluster == "all" else ui.cluster_members(cluster)  # split once per version
    names = ui.school_names().reindex(in_cluster["school_id"]).to_dict()  # told apart where names repeat
    return dict(sorted(names.items(), key=lambda item: item[1])), in_cluster["school_id"].tolist()


years, present, clusters = discipline_options(ui.import_version())
if not years:
    st.info("No discipline data yet. Import a discipline file on the Data page.")
    st.stop()

cols = st.columns(4)
cluster = ui.url_choice("Cluster", "cluster", clusters, "all", container=cols[0],
                        format_func=lambda c: "Whole district" if c == "all" else c)
school_names, cluster_ids = cluster_schools(ui.import_version(), cluster)
school = ui.url_choice("School", "school", ["all", *school_names], "all",
                       container=cols[1], format_func=lambda s: "All schools" if s == "all" else school_names[s])
year = int(ui.url_choice("School year", "year", [str(y) for y in years], str(years[-1]), container=cols[2],
                         format_func=lambda y: f"{int(y) - 1}-{str(y)[-2:]}"))
groups = [g for g in STUDENT_GROUPS if g != "ALL" and g in present]
group = ui.url_choice("Group for risk ratios", "group", groups, "BL" if "BL" in groups else groups[0],
                      container=cols[3], format_func=group_label)
scope_ids = [school] if school != "all" else cluster_ids
scope_name = school_names.get(school) if school != "all" else ("the district" if cluster == "all" else cluster)
# Rates by group draw first, from the scope's sums alone (summed by the database); the district-wide
# flags, ratios and restorative-practices estimate (tens of seconds on a cold server at state scale)
# follow in the same run, and the findings, which state them, are filled in above where they belong.
of_cluster = cluster if school == "all" and cluster != "all" else None  # sliced from every cluster's
# Before the preparer has made them, the restorative-practices estimates and the year's flags and ratios are the
# view's own reads (seconds of the database's time at state scale): started now, they overlap what draws first.
ui.rp_ahead(cluster, school if school != "all" else None)
ui.year_flags_and_ratios_ahead(year, None if cluster == "all" else cluster_ids)


@functools.cache  # once per run: the page defines it anew on each
def scope_sums() -> pd.DataFrame:
    """The scope's sums, read only by the views made from them below: a warm rerun finds those views made and
    neither copies the sums (nor the schools table that tells a district's from a cluster's) out of
    Streamlit's cache."""
    return ui.discipline_sums(scope_ids, of_cluster)


@ui.shared
def scope_views(version: int, cluster: str, school: str, year: int):
    """The flags and ratios for the year of the schools in scope (disproportionality of the cluster's schools,
    the alternate ratio's district risks summed in SQL), and the monthly suspension run chart with its PDSA
    cycles (incidents counted per month by the database; shared read-only: never changed here)."""
    of_scope = None if cluster == "all" else cluster
    flagged, suspension = ui.year_flags_and_ratios(year, None if of_scope is None else cluster_ids, of_scope)
    flags = flagged[flagged["school_id"].isin(scope_ids)]
    ratios = suspension[suspension["school_id"].isin(scope_ids)]
    chart = ui.suspension_run_chart(scope_ids, of_cluster)
    spans = None
    if chart is not None and school != "all":
        cycles = loads.load_cycles(ui.engine(), school_ids=scope_ids)
        spans = attach_cycles(chart, cycles[cycles["metric"] == "suspension_rate"])
    return flags, ratios, chart, spans


@ui.drawn
def columns_with_counts(version: int, cluster: str, school: str, year: int) -> dict[str, bool]:
    """Which optional counts the district's files carry for the schools in scope."""
    sums = scope_sums()
    return {c: bool(sums[f"n_{c}"].sum() > 0) for c in ("students_iss", "students_oss", "students_expelled",
                                                        "law_referrals", "oss_days")}


has = columns_with_counts(ui.import_version(), cluster, school, year)

# --- findings ---------------------------------------------------------------------------------------
@ui.drawn
def findings(version: int, cluster: str, school: str, year: int, share: str | None) -> tuple[list[str], str]:
    """The findings' lines and the note on summed ALL rows, once per data version and view."""
    sums = scope_sums()
    all_rows = sums[sums["student_group"] == "ALL"]
    # A school-year whose suspension count is unknown is left out of numerator and denominator alike.
    by_year = all_rows[all_rows["n_s"] > 0].set_index("school_year")[["s", "s_enrolled"]].rename(
        columns={"s_enrolled": "enrolled"})
    lines = []
    scope_unit = school if school != "all" else ("district" if cluster == "all" else f"cluster:{cluster}")
    # A shared view states the change only when both years' rates of the scope are released exactly.
    change_released = ui.exact_cells([scope_unit] * 2, [year - 1, year], ["suspension_rate"] * 2, ["ALL"] * 2).all()
    if year in by_year.index and (year - 1) in by_year.index and change_released:
        lines.append(rate_change_finding(f"Suspension rate in {scope_name}", by_year.loc[year - 1, "s"],
                                         by_year.loc[year - 1, "enrolled"], by_year.loc[year, "s"],
                                         by_year.loc[year, "enrolled"], higher_is_better=False))
    flagged_schools = flags["school_id"].nunique()
    if share is None:
        lines.append(f"{counted(flagged_schools, 'school')} in {scope_name} "
                     f"{for_count(flagged_schools, 'has', 'have')} a group with a suspension-type risk ratio of 3.0 "
                     "or more in each of the last 3 years (Maryland's rule)." if len(flags) else
                     f"No group in {scope_name} meets the 3-year risk-ratio rule (3.0 or more in 3 consecutive "
                     "years).")
    else:  # what is shown, never how many flags are withheld (that would tell of hidden ratios of 3.0 or more)
        lines.append(f"{counted(flagged_schools, 'school')} in {scope_name} {for_count(flagged_schools, 'shows', 'show')}"
                     " a group flagged by the 3-year risk-ratio rule (3.0 or more in 3 consecutive years). "
                     + FLAGS_SHARED if len(flags) else
                     f"No 3-year risk-ratio flag (3.0 or more in 3 consecutive years) is shown for {scope_name}. "
                     + FLAGS_SHARED)
    derived_note = ""
    derived, unknown = int(all_rows["derived"].sum()), int(all_rows["derived_unknown"].sum())
    if derived:
        derived_note = (f"{counted(derived, 'school-year')} had no ALL row: ALL was summed from the race/ethnicity "
                        "rows." + (f" {'In it' if derived == 1 else f'In {unknown} of them'} a race count was "
                                   "suppressed, so the summed suspension count is unknown and left out (a partial "
                                   "sum would understate it)."
                                   if unknown else ""))
    return lines, derived_note


scope_unit = school if school != "all" else ("district" if cluster == "all" else f"cluster:{cluster}")
st.subheader("Findings")
# Filled below, once the flags and the RP estimate are made; until then it says so, so that a rerun for
# another scope never leaves the previous scope's findings on screen while it works.
findings_slot = st.empty()
findings_slot.caption("Working out the findings…")

# --- rates by group -----------------------------------------------------------------------------------
st.subheader(f"Rates by group, {year - 1}-{str(year)[-2:]}")


@ui.drawn
def scope_group_rates(version: int, cluster: str, school: str, year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rates by group and composition of the scope (read-only: the views below draw copies)."""
    return ui.discipline_group_rates(scope_sums(), year, of_cluster)


wide, composition = scope_group_rates(ui.import_version(), cluster, school, year)
if not wide.empty:
    # Short headers, most-used outcome first and enrolment last (the full names in each header's help), so the
    # six columns fit the page instead of the last two going off its right edge.
    labels = {c: OUTCOME_COLUMNS.get(c, f"{outcome_label(c)} (%)") for c in wide.columns if c != "enrolled"}
    order = [c for c in OUTCOME_COLUMNS if c in labels] + [c for c in labels if c not in OUTCOME_COLUMNS]
    helps = {c: f"{outcome_label(c)}: students with it / students enrolled (%)." for c in labels}
    if ui.is_public():  # viewers: each rate is a cell of the district's release (analytics.access.privacy)
        shown = wide.astype(object)
        codes = list(wide.index.map({group_label(g): g for g in STUDENT_GROUPS}))
        n_hidden = np.zeros(len(codes), dtype=bool)
        for col in labels:
            state, hidden_n = ui.cell_states([scope_unit] * len(codes), [year] * len(codes), [col] * len(codes), codes)
            n_hidden |= hidden_n
            shown[col] = [SUPPRESSED if st_ == "hidden" else coded_rate(0.0) if st_ == "low"
                          else coded_rate(100.0) if st_ == "high" else "" if not np.isfinite(v)
                          else ui.rate_text(v) for v, st_ in zip(wide[col], state, strict=True)]
        shown["enrolled"] = [SUPPRESSED if hide or n < 10 else f"{n:,.0f}"
                             for n, hide in zip(wide["enrolled"], n_hidden, strict=True)]
        headers = {**labels, "enrolled": "Enrolled (n)"}  # numbers as text beside `*` and bands: right-aligned
        st.dataframe(shown.rename(columns=headers), width="stretch",
                     column_order=[*(labels[c] for c in order), headers["enrolled"]],
                     column_config={header: st.column_config.TextColumn(header, alignment="right", help=helps.get(c))
                                    for c, header in headers.items()})
    else:
        st.dataframe(ui.arrow_ready(wide), width="stretch", column_order=[*order, "enrolled"], column_config={
            c: st.column_config.NumberColumn(label, format="%.2f", help=helps[c]) for c, label in labels.items()}
            | {"enrolled": st.column_config.NumberColumn("Enrolled (n)", format="localized")})
    st.caption("Rate = students with the outcome / students enrolled, pooled over the schools in scope. "
               + (marks_legend() if ui.is_public() else "Groups under 10 students are not shown."))

impact = ui.rp_impact_of(cluster)  # a cluster's RP schools against the district's never-RP schools
rp_scope = "the district" if cluster == "all" else cluster
rp_note = ""
if school != "all":
    if ui.has_rp_start(school):
        impact, rp_scope = ui.rp_impact_of(cluster, school), school_names[school]
    else:
        rp_note = (f"{school_names[school]} has no restorative-practices start year: the estimate is for the RP "
                   f"schools of {rp_scope}.")


flags, scope_dispro, chart, spans = scope_views(ui.import_version(), cluster, school, year)
if ui.is_public():  # ratios, flags and "too small" only where every cell behind them is released exactly
    released = ui.public_view(scope_dispro, "disproportionality")
    scope_dispro = scope_dispro.assign(risk_ratio=pd.to_numeric(released["risk_ratio"], errors="coerce"),
                                       ratio_type=released["ratio_type"])
    masked_flags = ui.public_view(flags, "disproportionality")
    # A flag rests on the two earlier years' ratios too: listed only when all of them are released.
    shown_flags = flags[(masked_flags["flagged"] == True).to_numpy()]  # noqa: E712 - `*` marks a withheld flag
    flags = shown_flags
# One RP school's estimate is a function of that school's own yearly counts: not in a shared view.
one_school_rp = ui.is_public() and not impact.summary.empty and impact.summary["n_rp_schools"].max() < 2
rp_withheld = ("Restorative-practices impact is not shown in shared views when one school stands behind it: "
               "the estimate would be computed from that school's own small counts.")

lines, derived_note = findings(ui.import_version(), cluster, school, year, ui.share_token())
with findings_slot.container():
    st.markdown("\n".join(f"- {line}" for line in [*lines, rp_withheld if one_school_rp else impact.statement]))
    if derived_note:
        st.caption(derived_note)
    missing = [name for name, ok in (("ISS/OSS split", has["students_iss"] and has["students_oss"]),
                                     ("expulsions", has["students_expelled"]), ("law referrals", has["law_referrals"]),
                                     ("OSS days", has["oss_days"])) if not ok]
    if missing:
        st.info(f"This district's files have no {', '.join(missing)}: those views are left out.")

# --- risk ratios --------------------------------------------------------------------------------------
st.subheader("Risk ratios (suspension)")
if ui.is_public():
    st.caption("Shared view: a risk ratio is shown only where the counts of the group and of its comparison "
               "group are released exactly (privacy rules).")
ratio_columns = {"label": "Group", "risk_ratio": "Risk ratio", "ratio_name": "Comparison group"}


def ratio_table(rows: pd.DataFrame, label_title: str) -> pd.DataFrame:
    """The rows a risk-ratio chart draws, for its data table, numbered from 0 (where the rows sat among the
    schools they were computed with says nothing, and is not shown)."""
    out = rows.assign(ratio_name=rows["ratio_type"].map(RATIO_TYPES))[list(ratio_columns)]
    return out.rename(columns={**ratio_columns, "label": label_title}).round({"Risk ratio": 2}).reset_index(drop=True)


@ui.drawn
def ratios_view(version: int, cluster: str, school: str, year: int, group: str, share: str | None):
    """The view's risk-ratio chart (None when no ratio), its rows as people read them, its summary, and the
    groups (one school) or number of schools (several) too small for a ratio."""
    view_key = ("risk ratios", version, cluster, school, year, group, share)  # the chart's data comes from these
    if school != "all":
        data = scope_dispro.assign(label=scope_dispro["student_group"].map(group_label))
        # A viewer's withheld ratio reads `*` as its type: counted with the too small, as "not shown".
        too_small = data[data["ratio_type"].eq("none") if share is None else data["risk_ratio"].isna()]["label"].tolist()
        ranked = data.dropna(subset=["risk_ratio"]).sort_values("risk_ratio", ascending=False)
        if not len(ranked):
            return None, None, "", too_small
        top = ranked.iloc[0]
        summary = (f"{counted(len(ranked), 'group')} of {scope_name} {for_count(len(ranked), 'has', 'have')} a "
                   f"suspension risk ratio in {ui.year_label(year)}; "
                   f"highest {top['label']} at {top['risk_ratio']:.2f}"
                   + (" (alternate ratio)" if top["ratio_type"] == "alternate" else "")
                   + f"; {int((ranked['risk_ratio'] >= 3).sum())} at or above the 3.0 threshold.")
        chart = ui.finished(charts_equity.risk_ratio_bars, ranked, title=f"Suspension risk ratios, {scope_name}",
                            label_field="label", key=view_key)
        return chart, ratio_table(ranked, "Group"), summary, too_small
    none = int((scope_dispro["student_group"].eq(group) & (scope_dispro["ratio_type"].eq("none") if share is None
                                                           else scope_dispro["risk_ratio"].isna())).sum())
    data = scope_dispro[scope_dispro["student_group"] == group].dropna(subset=["risk_ratio"])
    data = data.assign(label=data["school_id"].map(school_names))  # the schools in scope, by id
    top = data.sort_values("risk_ratio", ascending=False).head(25)
    if top.empty:
        return None, None, "", none
    summary = (f"{counted(len(data), 'school')} in {scope_name} {for_count(len(data), 'has', 'have')} a "
               f"{group_label(group)} suspension risk ratio in "
               f"{ui.year_label(year)}; highest {top['label'].iloc[0]} at {top['risk_ratio'].iloc[0]:.2f}; "
               f"{int((data['risk_ratio'] >= 3).sum())} at or above the 3.0 threshold.")
    title = f"{group_label(group)} suspension risk ratio by school" + (" (highest 25)" if len(data) > 25 else "")
    chart = ui.finished(charts_equity.risk_ratio_bars, top, title=title, label_field="label", key=view_key)
    return chart, ratio_table(top, "School"), summary, none


ratio_chart, ratio_rows, ratio_summary, too_small = ratios_view(ui.import_version(), cluster, school, year, group,
                                                                ui.share_token())
if ratio_chart is not None:
    ui.chart(ratio_chart, ratio_rows, ratio_summary)
if school != "all":
    if too_small and ui.is_public():
        st.caption(f"No ratio shown ({NO_RATIO_SHARED}): " + ", ".join(too_small) + ".")
    elif too_small:
        st.caption("Too small to compute (fewer than 30 enrolled or 10 suspended): " + ", ".join(too_small) + ".")
else:
    if ratio_chart is None:
        st.info(f"No {group_label(group)} risk ratio in {scope_name} can be shown on this shared link: "
                f"{NO_RATIO_SHARED}." if ui.is_public() else
                f"No school in {scope_name} has enough {group_label(group)} students to compute a ratio.")
    st.caption(f"Alternate ratios (orange, marked \"alternate\") compare with the district's students outside the "
               f"group. {counted(too_small, 'school')} "
               + (f"{for_count(too_small, 'shows', 'show')} no {group_label(group)} ratio: {NO_RATIO_SHARED}."
                  if ui.is_public() else
                  f"{for_count(too_small, 'has', 'have')} too few {group_label(group)} students to compute a ratio."))

# --- flags --------------------------------------------------------------------------------------------
st.subheader("Flagged: 3.0 or more in 3 consecutive years")


@ui.drawn
def flag_links(version: int, cluster: str, school: str, year: int, share: str | None) -> list[tuple[str, str, str]]:
    """Each flagged school and group as (link text, school, group)."""
    links = []
    for (sid, g), rows in flags.groupby(["school_id", "student_group"]):
        outcomes = ", ".join(f"{outcome_label(o).lower()} ({r:.1f})"
                             for o, r in zip(rows["outcome"], rows["risk_ratio"], strict=True))
        links.append((f"{school_names.get(sid, sid)} · {group_label(g)} · {outcomes}", sid, g))
    return links


if flags.empty:
    st.write("None shown." if ui.is_public() else "None in scope.")
else:
    for text, sid, g in flag_links(ui.import_version(), cluster, school, year, ui.share_token()):
        ui.link(text, "pages/school.py", school=sid, year=year, group=g)
if ui.is_public():
    st.caption(FLAGS_SHARED)

# --- composition --------------------------------------------------------------------------------------
@ui.drawn
def composition_shown(version: int, cluster: str, school: str, year: int, share: str | None) -> pd.DataFrame:
    """The composition table as people read it, groups by name, once per data version and view (read-only: drawn
    as the Arrow table made of it once); a shared view's shares as text, `*` where withheld."""
    comp = composition.round(1)
    if share is not None:  # a share needs the group's and ALL's cells released exactly (and their n)
        codes = list(comp.index)
        n = len(codes)
        state, n_hidden = ui.cell_states([scope_unit] * n, [year] * n, ["suspension"] * n, codes)
        all_state, all_n = ui.cell_states([scope_unit] * n, [year] * n, ["suspension"] * n, ["ALL"] * n)
        comp = comp.astype(object)
        comp.loc[(state != "exact") | (all_state != "exact"), "share of suspended (%)"] = SUPPRESSED
        comp.loc[n_hidden | all_n, "share of enrolled (%)"] = SUPPRESSED
        # Text as staff read the numbers, `*` where withheld: one type a column, as every shared table has.
        comp = ui.filled(comp, dict.fromkeys(comp.columns, "{:.1f}"))
    comp.index = comp.index.map(group_label)
    return comp


with st.expander("Composition: each group's share of suspended students vs its share of enrolment"):
    comp = composition_shown(ui.import_version(), cluster, school, year, ui.share_token())
    shares = {col: col for col in comp.columns}
    config = ui.text_columns(shares) if ui.is_public() else {
        col: st.column_config.NumberColumn(label, format="%.1f") for col, label in shares.items()}
    st.dataframe(ui.arrow_ready(comp), width="stretch", column_config=config)

@ui.drawn
def rp_view(version: int, cluster: str, school: str, public: bool):
    """The RP event study of the view (rows, finished chart and its rows as people read them) and the table of
    RP estimates beside suspensions: a cluster's made ahead by the preparer (:mod:`pages.ui.rp_views`); a
    shared viewer's with every estimate that rests on one RP school withheld."""
    if public:
        return rp_views.public_rp_view(impact, ui.rp_beyond(cluster, school), rp_scope, ui.metric_label,
                                       ("event study", version, cluster, school, "public"))
    if school == "all" and (made := rp_views.cluster_rp_view(cluster)) is not None:
        return made
    return rp_views.rp_view(impact, ui.rp_beyond(cluster, school), rp_scope, ui.metric_label,
                            ("event study", version, cluster, school))


# --- restorative practices impact ----------------------------------------------------------------------
st.subheader(f"Restorative-practices impact: {rp_scope}")
if rp_note:
    st.caption(rp_note)
if one_school_rp:
    st.info(rp_withheld)
elif not rp_views.drawable(impact):
    st.info(impact.statement)
else:
    events, study, study_rows, shown = rp_view(ui.import_version(), cluster, school, ui.is_public())
    ui.chart(study, study_rows, impact.statement, caption=False)
    ui.download_menu("rp-event-study", events, study)
    st.dataframe(ui.arrow_ready(shown), hide_index=True, width="stretch",  # a viewer's come as text (`*`)
                 column_config=None if ui.is_public() else {
                     "Estimate": st.column_config.NumberColumn(format="%+.2f"),
                     "p (randomization)": st.column_config.NumberColumn(format="%.3f")})
    st.caption(impact.summary["method"].iloc[0] + ". Pre-start estimates (left of -1) check the parallel-trends "
               "assumption: they should sit near zero. n above each point: RP schools behind that year. Beside "
               "suspensions, the same estimator on the school-climate survey (% favourable; higher is better) and "
               "chronic absence (lower is better); the professional-learning page relates them to implementation. "
               "Each year's interval stands alone (not adjusted for looking at several years): the verdict rests on "
               "the overall estimate and its p-value.")

# --- run chart ----------------------------------------------------------------------------------------
@ui.drawn
def run_view(version: int, cluster: str, school: str, year: int, share: str | None):
    """The monthly run chart of the view, its rows as people read them and its summary (None: no incidents)."""
    if chart is None:
        return None
    shown = chart
    if ui.is_public():  # monthly counts of 1-9 are suppressed: not drawn, starred in the data table
        starred = ui.public_view(chart, "run-chart")["value"]
        shown = chart.assign(value=pd.to_numeric(starred, errors="coerce"))
    signals = shown[shown["signal"] != ""]
    summary = (f"Suspensions (ISS + OSS) per month in {scope_name}: median {shown['median'].iloc[0]:.0f} over "
               f"{counted(len(shown), 'month')}. "
               + (f"{counted(len(signals), 'point')} {for_count(len(signals), 'is', 'are')} part of a shift (6+ on "
                  "one side of the median) or a trend (5+ rising or falling)." if len(signals)
                  else "No shift or trend signal: the variation looks like noise.")
               + (" Shaded: PDSA cycles." if spans is not None and len(spans) else ""))
    months = shown.assign(period=pd.to_datetime(shown["period"]).dt.strftime("%b %Y"),
                          signal=shown["signal"].replace("", "none"))
    finished = ui.finished(charts_equity.run_chart, shown, spans, title=f"Suspensions (ISS + OSS) per month, {scope_name}",
                           y_title="Suspensions per month", key=("run chart", version, cluster, school, year, share))
    return finished, months.rename(columns={"period": "Month", "value": "Suspensions", "median": "Median",
                                            "signal": "Signal"}), summary


st.subheader("Run chart: suspensions per month")
run = run_view(ui.import_version(), cluster, school, year, ui.share_token())
if run is None:
    st.info("No student-level incident file has been imported for these schools, so there is no monthly series.")
else:
    ui.chart(*run)

"""Chart builders for the professional-learning evaluation (`/learning`): one per level, and the nexus.

Pure functions from tables to ``alt.Chart``; colour-blind-safe palettes (a diverging blue-orange Likert
scale drawn from Okabe-Ito hues; viridis for schools), titles, axis titles with units.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from analytics.learning.levels import AGREE, LIKERT_LABELS

# Disagree in orange, agree in blue, neutral grey: readable with any colour-vision deficiency.
LIKERT_COLOURS = ["#D55E00", "#E69F00", "#BBBBBB", "#56B4E9", "#0072B2"]


def _by_agreement(pct_agree: pd.Series) -> list[str]:
    """Items most agreed with first (ties by name): one order for both of level 1's charts."""
    return sorted(pct_agree.index, key=lambda item: (-pct_agree[item], str(item)))


def likert_bars(segments: pd.DataFrame, title: str = "Session feedback") -> alt.Chart:
    """Diverging stacked bars: disagreement left of 0, agreement right, neutral straddling 0."""
    domain = list(LIKERT_LABELS.values())
    agree = segments[segments["order"].isin(AGREE)].groupby("item", sort=False)["pct"].sum()
    order = _by_agreement(agree)
    bars = alt.Chart(segments).mark_bar().encode(
        y=alt.Y("item:N", title=None, sort=order, axis=alt.Axis(labelLimit=320)),
        x=alt.X("start:Q", title="% of responses (disagree \u2190 0 \u2192 agree)",
                scale=alt.Scale(domain=[-100, 100])),
        x2="end:Q",
        color=alt.Color("response:N", title="Response", sort=domain,
                        scale=alt.Scale(domain=domain, range=LIKERT_COLOURS),
                        legend=alt.Legend(orient="bottom", columns=3, labelLimit=140)),
        order=alt.Order("order:Q"),
        tooltip=["item:N", "response:N", alt.Tooltip("pct:Q", format=".1f", title="% of responses")],
    )
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#333").encode(x="x:Q")
    return alt.layer(bars, zero).properties(title=title, height=40 + 40 * int(segments["item"].nunique()))


def agree_intervals(summary: pd.DataFrame, title: str = "% agree with 95% interval") -> alt.Chart:
    """% agree per item as a point with its Wilson interval."""
    order = _by_agreement(summary.set_index("item")["pct_agree"])
    base = alt.Chart(summary).encode(y=alt.Y("item:N", title=None, sort=order, axis=alt.Axis(labelLimit=320)))
    rule = base.mark_rule(color="#0072B2", strokeWidth=2).encode(
        x=alt.X("ci_low:Q", title="% agree (Wilson 95% CI)", scale=alt.Scale(domain=[0, 100])),
        x2="ci_high:Q")
    point = base.mark_point(filled=True, size=90, color="#0072B2").encode(
        x="pct_agree:Q", tooltip=["item:N", alt.Tooltip("pct_agree:Q", format=".1f", title="% agree"),
                                  alt.Tooltip("ci_low:Q", format=".1f"), alt.Tooltip("ci_high:Q", format=".1f"),
                                  alt.Tooltip("n:Q", format=",", title="responses")])
    return alt.layer(rule, point).properties(title=title, height=40 + 40 * len(summary))


def pre_post(assessments: pd.DataFrame, title: str = "Assessment scores before and after") -> alt.Chart:
    """Distribution of pre and post scores (paired participants only), as overlaid histograms."""
    both = assessments.dropna(subset=["pre_score", "post_score"])
    data = pd.concat([pd.DataFrame({"when": "Before", "score": both["pre_score"]}),
                      pd.DataFrame({"when": "After", "score": both["post_score"]})], ignore_index=True)
    return alt.Chart(data).mark_bar(opacity=0.55, binSpacing=0).encode(
        x=alt.X("score:Q", bin=alt.Bin(maxbins=25), title="Assessment score (points)"),
        y=alt.Y("count():Q", stack=None, title="Participants"),
        color=alt.Color("when:N", title=None, sort=["Before", "After"],
                        scale=alt.Scale(domain=["Before", "After"], range=["#E69F00", "#0072B2"])),
    ).properties(title=title, height=240)


def support_bars(table: pd.DataFrame, title: str = "Supports in place by school") -> alt.Chart:
    """Share of supports in place per school (latest year), highest first, each bar labelled with its share and
    items ("0% (0 of 5)" too, so a school with nothing in place reads as such rather than as an empty row)."""
    data = table.assign(label=table["share"].map("{:.0f}%".format) + " (" + table["in_place"].map("{:.0f}".format)
                        + " of " + table["items"].map("{:.0f}".format) + ")")
    order = data.sort_values(["share", "school"], ascending=[False, True])["school"].tolist()
    base = alt.Chart(data).encode(y=alt.Y("school:N", title=None, sort=order, axis=alt.Axis(labelLimit=260)))
    bars = base.mark_bar(color="#009E73").encode(
        x=alt.X("share:Q", title="Supports in place (% of checklist items)", scale=alt.Scale(domain=[0, 100])),
        tooltip=["school:N", alt.Tooltip("share:Q", format=".0f", title="% in place"),
                 alt.Tooltip("in_place:Q", title="items in place"), alt.Tooltip("items:Q", title="items rated")])
    # Labels sit inside the end of a long bar (white), past the end of a short one (dark).
    inside = base.mark_text(fontSize=11, align="right", dx=-4, color="white").encode(
        x="share:Q", text="label:N").transform_filter(alt.datum.share >= 25)
    outside = base.mark_text(fontSize=11, align="left", dx=4, color="#333").encode(
        x="share:Q", text="label:N").transform_filter(alt.datum.share < 25)
    return alt.layer(bars, inside, outside).properties(title=title, height=20 + 24 * len(table))


def fidelity_lines(table: pd.DataFrame, colour_field: str, colour_title: str,
                   title: str = "Implementation fidelity by school year") -> alt.Chart:
    """Fidelity (%) by school year, one line per school or practice."""
    return alt.Chart(table).mark_line(point=True).encode(
        x=alt.X("school_year:O", title="School year (ending)"),
        y=alt.Y("fidelity:Q", title="Classrooms using the practice (%)", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color(f"{colour_field}:N", title=colour_title, scale=alt.Scale(scheme="viridis"),
                        legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=0)),
        tooltip=[f"{colour_field}:N", "school_year:O", alt.Tooltip("fidelity:Q", format=".0f", title="fidelity %"),
                 alt.Tooltip("observed:Q", title="classrooms observed")],
    ).properties(title=title, height=280)


def fidelity_run_chart(chart: pd.DataFrame, title: str = "Fidelity per month (run chart)") -> alt.Chart:
    """Monthly pooled fidelity, its median, and shift/trend points highlighted (Perla et al. 2011)."""
    data = chart.assign(signalled=(chart["signal"].astype(str) != "").map({True: "part of a shift or trend",
                                                                           False: "no signal"}))
    line = alt.Chart(data).mark_line(color="#555").encode(
        x=alt.X("period:T", title="Month", axis=alt.Axis(format="%b %Y", labelAngle=-40)),
        y=alt.Y("value:Q", title="Classrooms using the practice (%)", scale=alt.Scale(domain=[0, 100])))
    points = alt.Chart(data).mark_circle(size=60).encode(
        x="period:T", y="value:Q",
        color=alt.Color("signalled:N", title="Run-chart rule", scale=alt.Scale(
            domain=["no signal", "part of a shift or trend"], range=["#56B4E9", "#D55E00"])),
        tooltip=[alt.Tooltip("period:T", format="%b %Y"), alt.Tooltip("value:Q", format=".0f", title="fidelity %"),
                 alt.Tooltip("observed:Q", title="classrooms observed"), "signal:N"])
    median = alt.Chart(data).mark_rule(color="#009E73", strokeDash=[6, 3]).encode(y="mean(median):Q")
    return alt.layer(line, median, points).properties(title=title, height=260)


def dose_response(effects: pd.DataFrame, metric_label: str) -> alt.Chart:
    """Difference-in-differences estimate with its 95% interval: all participants and each fidelity tertile."""
    data = effects.dropna(subset=["estimate"]).assign(
        group=lambda d: d["tertile"].where(d["tertile"] != "all", "all participating schools"))
    order = data["group"].tolist()
    base = alt.Chart(data).encode(y=alt.Y("group:N", title=None, sort=order, axis=alt.Axis(labelLimit=260)))
    rule = base.mark_rule(color="#0072B2", strokeWidth=2).encode(
        x=alt.X("ci_low:Q", title="Difference-in-differences (points, 95% CI)"), x2="ci_high:Q")
    point = base.mark_point(filled=True, size=90, color="#0072B2").encode(
        x="estimate:Q", tooltip=["group:N", alt.Tooltip("estimate:Q", format="+.2f"),
                                 alt.Tooltip("ci_low:Q", format="+.2f"), alt.Tooltip("ci_high:Q", format="+.2f"),
                                 alt.Tooltip("p_value:Q", format=".3f"), alt.Tooltip("n_rp_schools:Q", title="schools")])
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#333", strokeDash=[4, 3]).encode(x="x:Q")
    return alt.layer(zero, rule, point).properties(
        title=alt.TitleParams("Effect overall and by fidelity tertile", subtitle=metric_label),
        height=40 + 40 * len(data))


def nexus_scatter(points: pd.DataFrame, band: pd.DataFrame, outcome_label: str) -> alt.Chart:
    """Schools' fidelity vs their change in an outcome, with the OLS line and its 95% confidence band."""
    y_title = "Change since the start (points)"
    area = alt.Chart(band).mark_area(opacity=0.2, color="#0072B2").encode(
        x=alt.X("fidelity:Q", title="Implementation fidelity (% of classrooms)"), y=alt.Y("fit_low:Q", title=y_title),
        y2="fit_high:Q")
    line = alt.Chart(band).mark_line(color="#0072B2").encode(x="fidelity:Q", y="fit:Q")
    dots = alt.Chart(points).mark_circle(size=70, color="#E69F00", opacity=0.85).encode(
        x="fidelity:Q", y="change:Q",
        tooltip=["school:N", alt.Tooltip("fidelity:Q", format=".0f", title="fidelity %"),
                 alt.Tooltip("change:Q", format="+.2f", title="change (pts)")])
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#333", strokeDash=[4, 3]).encode(y="y:Q")
    return alt.layer(area, zero, line, dots).properties(
        title=alt.TitleParams(outcome_label, subtitle=["Each dot a school; line = least-squares fit, band = its 95%",
                                                       "interval. An association, not a cause."]), height=300)


def level5_intervals(table: pd.DataFrame, title: str = "Professional learning: student outcomes (level 5)") -> alt.Chart:
    """Level 5 rows of the `learning` table: each programme's difference-in-differences with its 95% CI."""
    data = table[table["level"].astype(str) == "5"].copy()
    for col in ("estimate", "ci_low", "ci_high"):
        data[col] = pd.to_numeric(data[col], errors="coerce")
    data = data.dropna(subset=["estimate"])
    data["label"] = data["program"].astype(str) + ": " + data["measure"].astype(str).str.replace(
        "difference-in-differences: ", "", regex=False).str.replace("dose-response: ", "", regex=False)
    base = alt.Chart(data).encode(y=alt.Y("label:N", title=None, sort=None, axis=alt.Axis(labelLimit=420)))
    rule = base.mark_rule(color="#0072B2", strokeWidth=2).encode(
        x=alt.X("ci_low:Q", title="Difference-in-differences (points, 95% CI)"), x2="ci_high:Q")
    point = base.mark_point(filled=True, size=80, color="#0072B2").encode(
        x="estimate:Q", tooltip=["label:N", alt.Tooltip("estimate:Q", format="+.2f"), alt.Tooltip("n:Q", title="schools")])
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#333", strokeDash=[4, 3]).encode(x="x:Q")
    return alt.layer(zero, rule, point).properties(title=title, height=110 + 26 * len(data), width=520)

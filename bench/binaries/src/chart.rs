//! The part's chart: cold-start p50 of each binary as horizontal bars, with the target line.

/// An SVG bar chart of `rows` (name, milliseconds) with a vertical line at `limit`.
pub fn cold_starts(rows: &[(String, f64)], limit: f64) -> String {
    let (width, left, bar, gap) = (640.0, 190.0, 18.0, 8.0);
    let top = 30.0;
    let height = top + rows.len() as f64 * (bar + gap) + 30.0;
    let most = rows
        .iter()
        .map(|(_, ms)| *ms)
        .chain([limit])
        .filter(|ms| ms.is_finite())
        .fold(1.0_f64, f64::max);
    let scale = (width - left - 60.0) / most;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<text x="{left}" y="18">cold start p50, exec → first poll (ms); line: 2 × bare</text>
"#
    );
    for (i, (name, ms)) in rows.iter().enumerate() {
        let y = top + i as f64 * (bar + gap);
        let w = if ms.is_finite() { ms * scale } else { 0.0 };
        let colour = if *ms <= limit { "#3a7d44" } else { "#b03a2e" };
        svg.push_str(&format!(
            r#"<text x="{}" y="{}" text-anchor="end">{name}</text><rect x="{left}" y="{y}" width="{w:.1}" height="{bar}" fill="{colour}"/><text x="{:.1}" y="{}">{ms:.1}</text>
"#,
            left - 6.0,
            y + 13.0,
            left + w + 4.0,
            y + 13.0
        ));
    }
    let x = left + limit * scale;
    svg.push_str(&format!(
        r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="black" stroke-dasharray="4 3"/>
</svg>
"#,
        top - 4.0,
        height - 20.0
    ));
    svg
}

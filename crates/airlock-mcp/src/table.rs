//! The compact text table a tool result carries beside its structured
//! content (for models and clients that read text only). Pure; bounded:
//! at most [`MAX_TEXT_ROWS`] rows and [`MAX_CELL_CHARS`] characters a cell.

/// Rows shown in the text form (the structured content has them all).
pub const MAX_TEXT_ROWS: usize = 50;
/// Characters shown of one cell.
pub const MAX_CELL_CHARS: usize = 60;

fn cell(value: Option<&str>) -> String {
    let text = value.unwrap_or("NULL");
    let mut shown: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_CELL_CHARS)
        .collect();
    if text.chars().count() > MAX_CELL_CHARS {
        shown.push('…');
    }
    shown
}

/// `a | b` lines under a `--+--` rule, then `(n rows)`.
pub fn render(columns: &[String], rows: &[Vec<Option<String>>]) -> String {
    let header: Vec<String> = columns.iter().map(|name| cell(Some(name))).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .take(MAX_TEXT_ROWS)
        .map(|row| row.iter().map(|value| cell(value.as_deref())).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|name| name.chars().count()).collect();
    for row in &body {
        for (index, value) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(value.chars().count());
            }
        }
    }
    let line = |values: &[String]| -> String {
        values
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let mut out = String::new();
    if !header.is_empty() {
        out.push_str(&line(&header));
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        out.push_str(&rule.join("-+-"));
        out.push('\n');
    }
    for row in &body {
        out.push_str(&line(row));
        out.push('\n');
    }
    let more = rows.len().saturating_sub(MAX_TEXT_ROWS);
    let plural = if rows.len() == 1 { "" } else { "s" };
    if more > 0 {
        out.push_str(&format!("({} row{plural}, {more} not shown)", rows.len()));
    } else {
        out.push_str(&format!("({} row{plural})", rows.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned_rows_with_nulls_and_a_count() {
        let columns = vec!["id".to_string(), "email".to_string()];
        let rows = vec![
            vec![Some("1".into()), Some("a***@example.com".into())],
            vec![Some("22".into()), None],
        ];
        assert_eq!(
            render(&columns, &rows),
            "id | email\n---+-----------------\n1  | a***@example.com\n22 | NULL\n(2 rows)"
        );
    }

    #[test]
    fn long_and_many_are_cut() {
        let columns = vec!["x".to_string()];
        let rows: Vec<Vec<Option<String>>> =
            (0..60).map(|_| vec![Some("y\n".repeat(100))]).collect();
        let text = render(&columns, &rows);
        assert!(text.ends_with("(60 rows, 10 not shown)"), "{text}");
        assert!(text
            .lines()
            .all(|line| line.chars().count() <= MAX_CELL_CHARS + 1));
    }
}

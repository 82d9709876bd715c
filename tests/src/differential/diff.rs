//! A line diff (longest common subsequence) for mismatch reports: lines only PostgreSQL
//! produced start with `-`, lines only Tessera produced with `+`, shared lines with two spaces.

/// The diff from `expected` to `actual`, one output line per input line.
pub fn line_diff(expected: &[String], actual: &[String]) -> Vec<String> {
    let (n, m) = (expected.len(), actual.len());
    // lcs[i][j]: length of the longest common subsequence of expected[i..] and actual[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out.push(format!("  {}", expected[i]));
            i += 1;
            j += 1;
        } else if j == m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("- {}", expected[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", actual[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    fn lines(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn marks_removed_and_added_lines() {
        let diff = line_diff(&lines(&["a", "b", "c"]), &lines(&["a", "x", "c", "d"]));
        assert_eq!(diff, lines(&["  a", "- b", "+ x", "  c", "+ d"]));
    }

    #[test]
    fn handles_empty_sides() {
        assert_eq!(line_diff(&[], &lines(&["a"])), lines(&["+ a"]));
        assert_eq!(line_diff(&lines(&["a"]), &[]), lines(&["- a"]));
    }
}

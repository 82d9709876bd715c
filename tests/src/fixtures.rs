//! The course's student table, which most Tessera-only tests use: `studt(stud_id, stud_name,
//! stud_marks)` range-partitioned on `stud_id` into four shards of 4096 ids, `sh1` to `sh4`.

use tokio_postgres::Client;

use crate::client::describe_error;

/// Width of each shard's id range.
pub const SHARD_WIDTH: i32 = 4096;

/// The shards of `studt`, in key order.
pub const STUDT_SHARDS: [&str; 4] = ["sh1", "sh2", "sh3", "sh4"];

/// The DDL of `studt` and its shards, one statement per item.
pub const STUDT_DDL: [&str; 5] = [
    "CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id)",
    "CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096)",
    "CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192)",
    "CREATE TABLE sh3 PARTITION OF studt FOR VALUES FROM (8192) TO (12288)",
    "CREATE TABLE sh4 PARTITION OF studt FOR VALUES FROM (12288) TO (16384)",
];

/// Creates `studt` and its four shards, one statement at a time. Panics on failure.
pub async fn create_studt(client: &Client) {
    for statement in STUDT_DDL {
        if let Err(e) = client.simple_query(statement).await {
            panic!("`{statement}` failed: {}", describe_error(&e));
        }
    }
}

/// The shard of `studt` that holds `stud_id` (which must be in 0..16384).
pub fn studt_shard(stud_id: i32) -> &'static str {
    assert!(
        (0..4 * SHARD_WIDTH).contains(&stud_id),
        "stud_id {stud_id} is in no shard of studt"
    );
    STUDT_SHARDS[(stud_id / SHARD_WIDTH) as usize]
}

/// Whether `text` mentions the shard `name` as a word (`sh1` in "scan sh1," but not in
/// "sh10").
pub fn mentions_shard(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !is_word(before) && !is_word(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_of_studt() {
        assert_eq!(studt_shard(0), "sh1");
        assert_eq!(studt_shard(4095), "sh1");
        assert_eq!(studt_shard(4096), "sh2");
        assert_eq!(studt_shard(16383), "sh4");
    }

    #[test]
    fn shard_mentions_are_whole_words() {
        assert!(mentions_shard("Scan on sh1 (node 2)", "sh1"));
        assert!(mentions_shard("shards: sh1,sh2", "sh2"));
        assert!(!mentions_shard("Scan on sh10", "sh1"));
        assert!(!mentions_shard("Scan on ash1", "sh1"));
        assert!(!mentions_shard("accounts_p12", "accounts_p1"));
    }
}

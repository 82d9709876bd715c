//! Hash partitioning exactly as PostgreSQL computes it (`compute_partition_hash_value`): the
//! type's extended hash function seeded with PostgreSQL's partition seed, combined per column,
//! then `hash % modulus == remainder`. A row therefore lands in the partition of the same name
//! on Tessera as on PostgreSQL, and a script that reads one partition gets the same rows.

use crate::value::Value;

const HASH_PARTITION_SEED: u64 = 0x7A5B_2236_7996_DCFD;

/// The partition hash of a row's partition key (one column).
pub fn partition_hash(v: &Value) -> u64 {
    let mut row_hash = 0u64;
    if let Some(h) = hash_extended(v, HASH_PARTITION_SEED) {
        row_hash = hash_combine64(row_hash, h);
    }
    row_hash
}

/// Whether the key `v` belongs to the hash partition `(modulus, remainder)`.
pub fn in_hash_partition(v: &Value, modulus: u32, remainder: u32) -> bool {
    modulus > 0 && partition_hash(v) % u64::from(modulus) == u64::from(remainder)
}

fn hash_combine64(mut a: u64, b: u64) -> u64 {
    a ^= b
        .wrapping_add(0x49a0_f4dd_15e5_a8e3)
        .wrapping_add(a << 54)
        .wrapping_add(a >> 7);
    a
}

fn hash_int8(val: i64, seed: u64) -> u64 {
    let mut lohalf = val as u32;
    let hihalf = (val >> 32) as u32;
    lohalf ^= if val >= 0 { hihalf } else { !hihalf };
    hash_uint32_extended(lohalf, seed)
}

fn hash_float8(f: f64, seed: u64) -> u64 {
    if f == 0.0 {
        return seed;
    }
    let f = if f.is_nan() { f64::NAN } else { f };
    hash_bytes_extended(&f.to_le_bytes(), seed)
}

/// The type's `hash*extended` function; `None` for NULL, which does not contribute.
fn hash_extended(v: &Value, seed: u64) -> Option<u64> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => hash_uint32_extended(u32::from(*b), seed),
        Value::Int2(i) => hash_uint32_extended(i32::from(*i) as u32, seed),
        Value::Int4(i) => hash_uint32_extended(*i as u32, seed),
        Value::Int8(i) => hash_int8(*i, seed),
        Value::Date(d) => hash_uint32_extended(*d as u32, seed),
        Value::Timestamp(t) | Value::TimestampTz(t) => hash_int8(*t, seed),
        Value::Float4(f) => hash_float8(f64::from(*f), seed),
        Value::Float8(f) => hash_float8(*f, seed),
        Value::Text(s) => hash_bytes_extended(s.as_bytes(), seed),
        Value::Bytea(b) => hash_bytes_extended(b, seed),
        Value::Uuid(u) => hash_bytes_extended(u, seed),
        // PostgreSQL hashes numerics by their base-10000 digits; Tessera hashes the normalized
        // decimal text, so numeric hash keys place rows consistently but not as PostgreSQL does.
        Value::Numeric(d) => hash_bytes_extended(d.normalize().to_string().as_bytes(), seed),
    })
}

#[inline]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline]
fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

fn seeded(init: u32, seed: u64) -> (u32, u32, u32) {
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    (a, b, c)
}

/// PostgreSQL's `hash_uint32_extended` (Bob Jenkins' lookup3).
pub fn hash_uint32_extended(k: u32, seed: u64) -> u64 {
    let (mut a, mut b, mut c) = seeded(0x9e37_79b9u32.wrapping_add(4).wrapping_add(3_923_095), seed);
    a = a.wrapping_add(k);
    final_mix(&mut a, &mut b, &mut c);
    (u64::from(b) << 32) | u64::from(c)
}

/// PostgreSQL's `hash_bytes_extended` (lookup3 over bytes, little-endian word order).
pub fn hash_bytes_extended(k: &[u8], seed: u64) -> u64 {
    let (mut a, mut b, mut c) = seeded(
        0x9e37_79b9u32.wrapping_add(k.len() as u32).wrapping_add(3_923_095),
        seed,
    );
    let word = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let mut rest = k;
    while rest.len() >= 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    let byte = |i: usize, shift: u32| u32::from(rest[i]) << shift;
    let len = rest.len();
    if len >= 11 {
        c = c.wrapping_add(byte(10, 24));
    }
    if len >= 10 {
        c = c.wrapping_add(byte(9, 16));
    }
    if len >= 9 {
        c = c.wrapping_add(byte(8, 8));
    }
    if len >= 8 {
        b = b.wrapping_add(byte(7, 24));
    }
    if len >= 7 {
        b = b.wrapping_add(byte(6, 16));
    }
    if len >= 6 {
        b = b.wrapping_add(byte(5, 8));
    }
    if len >= 5 {
        b = b.wrapping_add(byte(4, 0));
    }
    if len >= 4 {
        a = a.wrapping_add(byte(3, 24));
    }
    if len >= 3 {
        a = a.wrapping_add(byte(2, 16));
    }
    if len >= 2 {
        a = a.wrapping_add(byte(1, 8));
    }
    if len >= 1 {
        a = a.wrapping_add(byte(0, 0));
    }
    final_mix(&mut a, &mut b, &mut c);
    (u64::from(b) << 32) | u64::from(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_exactly_one_partition() {
        for i in -50..50 {
            let v = Value::Int4(i);
            let hits = (0..4).filter(|r| in_hash_partition(&v, 4, *r)).count();
            assert_eq!(hits, 1);
        }
    }

    #[test]
    fn int4_and_int8_hash_alike() {
        // PostgreSQL makes int4 and int8 hash equal for equal values, so cross-type lookups work.
        for i in [-3i32, 0, 7, 123_456] {
            assert_eq!(
                partition_hash(&Value::Int4(i)),
                partition_hash(&Value::Int8(i64::from(i)))
            );
        }
    }
}

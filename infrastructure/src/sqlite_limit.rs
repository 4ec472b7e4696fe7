//! `LIMIT ?` written out as a number for SQLite.
//!
//! SQLite lets the value bound to a `LIMIT` parameter shape the statement's
//! plan, so binding it marks the prepared statement expired and the next step
//! parses and plans the whole statement again. Every `Select::one()` asks for
//! `LIMIT ?` with 1, and every page of a listing `LIMIT ?` with its size, so
//! without this each such query would be prepared anew each time it runs,
//! however long the statement cache keeps it. With the number in the text the
//! prepared statement is kept and reused; a listing gets one prepared
//! statement per page size, its offset still bound.

use sea_orm::{DbBackend, Statement, Value};

/// `statement` with each `LIMIT ?` whose bound value is a whole number written
/// as that number, the value taken out of the bound ones. Statements for other
/// engines, and any whose placeholders cannot be matched to their values with
/// certainty, are returned as they came.
pub(crate) fn literal_limits(mut statement: Statement) -> Statement {
    if statement.db_backend != DbBackend::Sqlite || !statement.sql.contains(" LIMIT ?") {
        return statement;
    }
    let Some(values) = statement.values.as_mut() else {
        return statement;
    };
    let Some(limits) = limit_placeholders(&statement.sql) else {
        return statement;
    };
    if limits.count != values.0.len() {
        return statement;
    }
    // From the last to the first, so earlier offsets and indexes stay right.
    for &(offset, index) in limits.at.iter().rev() {
        let Some(number) = values.0.get(index).and_then(whole_number) else {
            continue;
        };
        statement.sql.replace_range(offset..=offset, &number);
        values.0.remove(index);
    }
    statement
}

/// Where the placeholders after ` LIMIT ` are: each one's byte offset and
/// its index among all placeholders.
struct Limits {
    at: Vec<(usize, usize)>,
    /// How many placeholders the statement has in all.
    count: usize,
}

/// The placeholders of `sql` outside quoted text and identifiers, or `None`
/// when a quote is left open.
fn limit_placeholders(sql: &str) -> Option<Limits> {
    let bytes = sql.as_bytes();
    let mut at = Vec::new();
    let mut count = 0;
    let mut quote: Option<u8> = None;
    for (offset, &byte) in bytes.iter().enumerate() {
        match quote {
            // A doubled quote inside quoted text closes and reopens it,
            // which leaves the state as it should be.
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None => match byte {
                b'\'' | b'"' | b'`' => quote = Some(byte),
                b'[' => quote = Some(b']'),
                b'?' => {
                    if sql[..offset].ends_with(" LIMIT ")
                        && !bytes
                            .get(offset + 1)
                            .is_some_and(|next| next.is_ascii_alphanumeric())
                    {
                        at.push((offset, count));
                    }
                    count += 1;
                }
                _ => {}
            },
        }
    }
    quote.is_none().then_some(Limits { at, count })
}

/// A bound whole number's decimal text.
fn whole_number(value: &Value) -> Option<String> {
    match value {
        Value::TinyInt(Some(n)) => Some(n.to_string()),
        Value::SmallInt(Some(n)) => Some(n.to_string()),
        Value::Int(Some(n)) => Some(n.to_string()),
        Value::BigInt(Some(n)) => Some(n.to_string()),
        Value::TinyUnsigned(Some(n)) => Some(n.to_string()),
        Value::SmallUnsigned(Some(n)) => Some(n.to_string()),
        Value::Unsigned(Some(n)) => Some(n.to_string()),
        Value::BigUnsigned(Some(n)) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::Values;

    use super::*;

    fn sqlite(sql: &str, values: Vec<Value>) -> Statement {
        Statement {
            sql: sql.to_owned(),
            values: Some(Values(values)),
            db_backend: DbBackend::Sqlite,
        }
    }

    #[test]
    fn a_one_row_select_gets_its_limit_written_out() {
        let statement = literal_limits(sqlite(
            r#"SELECT "id", "name" FROM "products" WHERE "products"."id" = ? LIMIT ?"#,
            vec![Value::from("p-1"), Value::BigUnsigned(Some(1))],
        ));
        assert_eq!(
            statement.sql,
            r#"SELECT "id", "name" FROM "products" WHERE "products"."id" = ? LIMIT 1"#
        );
        assert_eq!(statement.values, Some(Values(vec![Value::from("p-1")])));
    }

    #[test]
    fn a_page_keeps_its_offset_bound() {
        let statement = literal_limits(sqlite(
            r#"SELECT "id" FROM "products" WHERE "stock" > ? ORDER BY "id" LIMIT ? OFFSET ?"#,
            vec![
                Value::Int(Some(0)),
                Value::BigUnsigned(Some(20)),
                Value::BigUnsigned(Some(40)),
            ],
        ));
        assert_eq!(
            statement.sql,
            r#"SELECT "id" FROM "products" WHERE "stock" > ? ORDER BY "id" LIMIT 20 OFFSET ?"#
        );
        assert_eq!(
            statement.values,
            Some(Values(vec![
                Value::Int(Some(0)),
                Value::BigUnsigned(Some(40))
            ]))
        );
    }

    #[test]
    fn a_limit_inside_a_subquery_is_written_out_at_its_own_place() {
        let statement = literal_limits(sqlite(
            r#"SELECT "id" FROM "a" WHERE "id" IN (SELECT "id" FROM "b" WHERE "x" = ? LIMIT ?) AND "y" = ? LIMIT ?"#,
            vec![
                Value::from("x"),
                Value::BigInt(Some(5)),
                Value::from("y"),
                Value::Unsigned(Some(1)),
            ],
        ));
        assert_eq!(
            statement.sql,
            r#"SELECT "id" FROM "a" WHERE "id" IN (SELECT "id" FROM "b" WHERE "x" = ? LIMIT 5) AND "y" = ? LIMIT 1"#
        );
        assert_eq!(
            statement.values,
            Some(Values(vec![Value::from("x"), Value::from("y")]))
        );
    }

    #[test]
    fn question_marks_inside_quotes_are_not_placeholders() {
        let statement = literal_limits(sqlite(
            r#"SELECT 'what? LIMIT ?' AS "odd ""?"" name", "b" FROM "t" WHERE "c" = ? LIMIT ?"#,
            vec![Value::from("c"), Value::BigUnsigned(Some(3))],
        ));
        assert_eq!(
            statement.sql,
            r#"SELECT 'what? LIMIT ?' AS "odd ""?"" name", "b" FROM "t" WHERE "c" = ? LIMIT 3"#
        );
        assert_eq!(statement.values, Some(Values(vec![Value::from("c")])));
    }

    #[test]
    fn what_cannot_be_matched_with_certainty_is_left_as_it_came() {
        let cases = [
            // A limit that is not a whole number (SQLite would refuse it, and
            // should say so itself).
            sqlite(r#"SELECT "a" FROM "t" LIMIT ?"#, vec![Value::from("ten")]),
            // More placeholders than values: something else is going on.
            sqlite(
                r#"SELECT "a" FROM "t" WHERE "b" = ? LIMIT ?"#,
                vec![Value::BigUnsigned(Some(1))],
            ),
            // A quote left open.
            sqlite(
                r#"SELECT "a FROM "t" LIMIT ?"#,
                vec![Value::BigUnsigned(Some(1))],
            ),
            // A numbered placeholder is not a plain one.
            sqlite(
                r#"SELECT "a" FROM "t" LIMIT ?1"#,
                vec![Value::BigUnsigned(Some(1))],
            ),
        ];
        for statement in cases {
            let unchanged = statement.clone();
            assert_eq!(literal_limits(statement), unchanged);
        }
        let postgres = Statement {
            db_backend: DbBackend::Postgres,
            ..sqlite(
                r#"SELECT "a" FROM "t" LIMIT ?"#,
                vec![Value::BigUnsigned(Some(1))],
            )
        };
        assert_eq!(literal_limits(postgres.clone()), postgres);
    }
}

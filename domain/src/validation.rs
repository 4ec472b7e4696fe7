use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

/// One thing wrong with one field of an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    /// The field's path as the client sent it, dotted for nesting: `price.currency`.
    pub field: String,
    /// A stable machine-readable reason, such as `length` or `range`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
}

impl FieldViolation {
    /// A violation of `field` for the reason `code`.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Every field that made an input invalid, sorted by field path so the same input
/// always reports the same list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct ValidationFailure {
    violations: Vec<FieldViolation>,
}

impl ValidationFailure {
    /// A failure made of the given violations.
    #[must_use]
    pub fn new(violations: Vec<FieldViolation>) -> Self {
        let mut failure = Self { violations };
        failure.sort();
        failure
    }

    /// A failure of exactly one field.
    pub fn single(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(vec![FieldViolation::new(field, code, message)])
    }

    /// The violations, sorted by field.
    #[must_use]
    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }

    /// Whether nothing was wrong.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// Adds the violations of `other`, e.g. of a nested value, under `prefix`.
    pub fn absorb(&mut self, prefix: &str, other: Self) {
        for mut violation in other.violations {
            violation.field = join(prefix, &violation.field);
            self.violations.push(violation);
        }
        self.sort();
    }

    /// `Ok(())` when nothing was wrong, otherwise `Err(self)`.
    ///
    /// # Errors
    /// Returns the failure itself when it holds at least one violation.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The first violation as a `validator` error, so a `#[validate(custom(...))]`
    /// rule can delegate to a value object's constructor.
    #[must_use]
    pub fn to_field_error(&self) -> validator::ValidationError {
        let (code, message) = self.violations.first().map_or_else(
            || ("invalid".to_owned(), "is invalid".to_owned()),
            |violation| (violation.code.clone(), violation.message.clone()),
        );
        validator::ValidationError {
            code: Cow::Owned(code),
            message: Some(Cow::Owned(message)),
            params: std::collections::HashMap::new(),
        }
    }

    fn sort(&mut self) {
        self.violations
            .sort_by(|a, b| a.field.cmp(&b.field).then_with(|| a.code.cmp(&b.code)));
    }
}

impl fmt::Display for ValidationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for violation in &self.violations {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{}: {}", violation.field, violation.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationFailure {}

impl From<ValidationErrors> for ValidationFailure {
    fn from(errors: ValidationErrors) -> Self {
        let mut violations = Vec::new();
        flatten("", errors, &mut violations);
        Self::new(violations)
    }
}

/// Runs `validator` rules on `input` and turns their errors into a [`ValidationFailure`].
///
/// # Errors
/// Returns every violated rule, one entry per field and reason.
pub fn validate<T: Validate + ?Sized>(input: &T) -> Result<(), ValidationFailure> {
    input.validate().map_err(ValidationFailure::from)
}

fn flatten(prefix: &str, errors: ValidationErrors, out: &mut Vec<FieldViolation>) {
    for (field, kind) in errors.into_errors() {
        let path = join(prefix, &field);
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    let message = error
                        .message
                        .clone()
                        .unwrap_or_else(|| default_message(&error.code));
                    out.push(FieldViolation::new(
                        path.clone(),
                        error.code.to_string(),
                        message,
                    ));
                }
            }
            ValidationErrorsKind::Struct(nested) => flatten(&path, *nested, out),
            ValidationErrorsKind::List(items) => {
                for (index, nested) in items {
                    flatten(&format!("{path}[{index}]"), *nested, out);
                }
            }
        }
    }
}

fn default_message(code: &str) -> Cow<'static, str> {
    Cow::Owned(format!("failed the `{code}` rule"))
}

fn join(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{field}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Validate)]
    struct Address {
        #[validate(length(min = 1, message = "must not be empty"))]
        city: String,
    }

    #[derive(Validate)]
    struct Signup {
        #[validate(length(min = 3, max = 20, message = "must be 3 to 20 characters"))]
        name: String,
        #[validate(range(min = 18))]
        age: u32,
        #[validate(nested)]
        address: Address,
    }

    #[test]
    fn reports_one_sorted_entry_per_invalid_field_with_nested_paths() {
        let input = Signup {
            name: "x".into(),
            age: 3,
            address: Address {
                city: String::new(),
            },
        };
        let failure = validate(&input).expect_err("input is invalid");
        let fields: Vec<_> = failure
            .violations()
            .iter()
            .map(|v| (v.field.as_str(), v.code.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("address.city", "length"),
                ("age", "range"),
                ("name", "length")
            ]
        );
        assert_eq!(
            failure.violations()[2].message,
            "must be 3 to 20 characters"
        );
        assert_eq!(failure.violations()[1].message, "failed the `range` rule");
    }

    #[test]
    fn valid_input_passes() {
        let input = Signup {
            name: "Ada".into(),
            age: 36,
            address: Address {
                city: "London".into(),
            },
        };
        assert!(validate(&input).is_ok());
    }

    #[test]
    fn absorb_prefixes_nested_fields() {
        let mut outer = ValidationFailure::single("name", "length", "too short");
        outer.absorb(
            "price",
            ValidationFailure::single("currency", "format", "bad"),
        );
        let fields: Vec<_> = outer.violations().iter().map(|v| v.field.clone()).collect();
        assert_eq!(fields, ["name", "price.currency"]);
        assert_eq!(outer.to_string(), "name: too short; price.currency: bad");
    }
}

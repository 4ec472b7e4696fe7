//! The shop's value objects from text and numbers as a client sends them:
//! each accepts or refuses with a validation failure, never panics, and what
//! it accepts reads back as itself from its own canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shop_app_api::application::reports::{day_text, parse_day};
use shop_domain::catalog::{Currency, Money, ProductName, Sku, Stock};
use shop_domain::identity::{Email, Password, Role};
use shop_domain::inventory::Quantity;
use shop_domain::wishlists::WishlistName;

fuzz_target!(|input: (&str, i64)| {
    let (text, number) = input;

    if let Ok(email) = Email::parse(text) {
        assert_eq!(
            Email::parse(email.as_str()).ok(),
            Some(email.clone()),
            "{text:?}"
        );
    }
    if let Ok(sku) = Sku::parse(text) {
        assert_eq!(Sku::parse(sku.as_str()).ok(), Some(sku.clone()), "{text:?}");
    }
    if let Ok(name) = ProductName::parse(text) {
        assert_eq!(
            ProductName::parse(name.as_str()).ok(),
            Some(name.clone()),
            "{text:?}"
        );
    }
    if let Ok(name) = WishlistName::parse(text) {
        assert_eq!(
            WishlistName::parse(name.as_str()).ok(),
            Some(name.clone()),
            "{text:?}"
        );
    }
    if let Ok(currency) = Currency::parse(text) {
        assert_eq!(currency.as_str().len(), 3, "{text:?}");
        assert_eq!(
            Currency::parse(currency.as_str()).ok(),
            Some(currency),
            "{text:?}"
        );
    }
    match Money::new(number, text) {
        Ok(money) => {
            assert_eq!(money.amount_minor(), number);
            assert!((0..=Money::MAX_MINOR).contains(&number), "{number}");
            assert_eq!(
                Money::new(number, money.currency().as_str()).ok(),
                Some(money)
            );
        }
        Err(failure) => assert!(!failure.to_string().is_empty()),
    }
    if let Some(role) = Role::parse(text) {
        assert_eq!(role.as_str(), text);
    }
    let chars = text.chars().count();
    assert_eq!(
        Password::new(text).is_ok(),
        (Password::MIN_CHARS..=Password::MAX_CHARS).contains(&chars),
        "{chars} characters"
    );
    if let Ok(quantity) = Quantity::new(number) {
        assert_eq!(i64::from(quantity.units()), number);
    }
    let _ = Stock::new(number);
    if let Some(day) = parse_day(text) {
        assert_eq!(
            parse_day(&day_text(day)),
            Some(day),
            "{text:?} read as {}",
            day_text(day)
        );
    }
});

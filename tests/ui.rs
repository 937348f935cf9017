//! Compile-time behaviour of `#[cached]`, `#[cache_put]` and `#[cache_invalidate]`: the forms
//! they accept and how they report mistakes.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

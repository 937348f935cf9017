use std::fmt::Display;

use cachemacro_runtime::cached;

#[cached(key = "sum:<label>")]
pub async fn sum(label: impl Display, values: impl IntoIterator<Item = u64>) -> u64 {
    let _ = label.to_string();
    values.into_iter().sum()
}

#[cached]
pub async fn shout(text: impl Display + Send) -> String {
    text.to_string().to_uppercase()
}

fn main() {}

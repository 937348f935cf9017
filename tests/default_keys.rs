//! Default keys (`#[cached]` without `key`) of two different functions never collide, whatever
//! their arguments: methods of different impls, traits and instances of a generic impl, an
//! argument list that spells another function's path, type and const generic arguments.
//!
//! Each function returns what identifies it and its arguments, so a call served another
//! function's entry returns the other function's answer.

use std::future::Future;
use std::pin::Pin;

use cachemacro_runtime::{cached, Cache};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type Answer = (String, Vec<String>);

fn answer(function: &str, args: &[&str]) -> Answer {
    let args = args.iter().map(|arg| (*arg).to_owned()).collect();
    (function.to_owned(), args)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

mod shop {
    use super::*;

    pub struct Users {
        pub cache: Cache,
    }

    pub struct Products {
        pub cache: Cache,
    }

    impl Users {
        #[cached(cache = self.cache)]
        pub async fn name(&self, id: u64) -> String {
            format!("user {id}")
        }

        // No `self` and no `Self` in the signature: only the compiler knows the impl.
        #[cached(cache = cache, companions = false)]
        pub async fn count(cache: &Cache, active: bool) -> String {
            let _ = cache;
            format!("users active={active}")
        }
    }

    impl Products {
        #[cached(cache = self.cache)]
        pub async fn name(&self, id: u64) -> String {
            format!("product {id}")
        }

        #[cached(cache = cache, companions = false)]
        pub async fn count(cache: &Cache, active: bool) -> String {
            let _ = cache;
            format!("products active={active}")
        }
    }

    pub trait Named {
        fn label(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
    }

    pub trait Titled {
        fn label(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
    }

    // The shape `#[async_trait]` gives a method, which `#[cached]` accepts.
    impl Named for Users {
        #[cached(cache = self.cache)]
        fn label(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
            Box::pin(async move { "named".to_owned() })
        }
    }

    impl Titled for Users {
        #[cached(cache = self.cache)]
        fn label(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
            Box::pin(async move { "titled".to_owned() })
        }
    }

    pub struct Shelf<T> {
        pub cache: Cache,
        pub item: T,
    }

    impl<T: Default + std::fmt::Debug + Send + Sync> Shelf<T> {
        #[cached(cache = self.cache)]
        pub async fn describe(&self, id: u64) -> String {
            format!("{id}: {:?}", T::default())
        }
    }
}

mod paths {
    use super::*;

    #[cached(cache = cache)]
    pub async fn a(cache: &Cache, x: String, y: String) -> Answer {
        answer("a", &[&x, &y])
    }

    #[cached(cache = cache)]
    pub async fn ab(cache: &Cache, x: String) -> Answer {
        answer("ab", &[&x])
    }

    #[cached(cache = cache)]
    pub async fn none(cache: &Cache) -> Answer {
        answer("none", &[])
    }

    /// A module named like the function `a`: `a::b()` once shared a key with `a("", "b")`.
    pub mod a {
        use super::*;

        #[cached(cache = cache)]
        pub async fn b(cache: &Cache) -> Answer {
            answer("a::b", &[])
        }

        #[cached(cache = cache)]
        pub async fn c(cache: &Cache, x: String) -> Answer {
            answer("a::c", &[&x])
        }
    }
}

mod generic {
    use super::*;

    #[cached(cache = cache)]
    pub async fn times<const N: u64>(cache: &Cache, x: u64) -> u64 {
        N * x
    }

    #[cached(cache = cache, key = "grid:<N>:<x>")]
    pub async fn grid<const N: usize>(cache: &Cache, x: u64) -> String {
        format!("{N}x{x}")
    }

    #[cached(cache = cache)]
    pub async fn size<T>(cache: &Cache) -> usize {
        size_of::<T>()
    }
}

#[tokio::test]
async fn methods_of_two_impls_in_one_module_keep_their_entries_apart() {
    let cache = Cache::memory();
    let users = shop::Users {
        cache: cache.clone(),
    };
    let products = shop::Products {
        cache: cache.clone(),
    };
    assert_eq!(users.name(1).await, "user 1");
    assert_eq!(products.name(1).await, "product 1");
    assert_eq!(users.name(1).await, "user 1");
    assert_eq!(products.name(1).await, "product 1");
    assert_eq!((cache.stats().loads, cache.stats().hits), (2, 2));

    // The companions of a method find its entry, and only its entry.
    users.invalidate_name(1).await.unwrap();
    assert_eq!(products.name(1).await, "product 1");
    assert_eq!(cache.stats().loads, 2);
    assert_eq!(users.name(1).await, "user 1");
    assert_eq!(cache.stats().loads, 3);
    assert_eq!(products.refresh_name(1).await, "product 1");
    assert_eq!(cache.stats().loads, 4);
}

#[tokio::test]
async fn associated_functions_of_two_impls_keep_their_entries_apart() {
    let cache = Cache::memory();
    assert_eq!(shop::Users::count(&cache, true).await, "users active=true");
    assert_eq!(
        shop::Products::count(&cache, true).await,
        "products active=true"
    );
    assert_eq!(shop::Users::count(&cache, true).await, "users active=true");
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test]
async fn methods_of_two_traits_on_one_type_keep_their_entries_apart() {
    use shop::{Named, Titled};
    let cache = Cache::memory();
    let users = shop::Users {
        cache: cache.clone(),
    };
    assert_eq!(Named::label(&users).await, "named");
    assert_eq!(Titled::label(&users).await, "titled");
    assert_eq!(Named::label(&users).await, "named");
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test]
async fn instances_of_a_generic_impl_keep_their_entries_apart() {
    let cache = Cache::memory();
    let numbers = shop::Shelf {
        cache: cache.clone(),
        item: 0u8,
    };
    let words = shop::Shelf {
        cache: cache.clone(),
        item: String::new(),
    };
    let _ = (&numbers.item, &words.item);
    assert_eq!(numbers.describe(1).await, "1: 0");
    assert_eq!(words.describe(1).await, "1: \"\"");
    assert_eq!(numbers.describe(1).await, "1: 0");
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test]
async fn arguments_that_spell_another_path_do_not_reach_its_entry() {
    let cache = Cache::memory();
    assert_eq!(
        paths::a(&cache, String::new(), "b".into()).await,
        answer("a", &["", "b"])
    );
    assert_eq!(paths::a::b(&cache).await, answer("a::b", &[]));
    assert_eq!(
        paths::a(&cache, String::new(), "b".into()).await,
        answer("a", &["", "b"])
    );
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test]
async fn const_generic_arguments_are_part_of_the_default_key() {
    let cache = Cache::memory();
    assert_eq!(generic::times::<1>(&cache, 5).await, 5);
    assert_eq!(generic::times::<2>(&cache, 5).await, 10);
    assert_eq!(generic::times::<1>(&cache, 5).await, 5);
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test]
async fn type_arguments_are_part_of_the_default_key() {
    let cache = Cache::memory();
    assert_eq!(generic::size::<u8>(&cache).await, 1);
    assert_eq!(generic::size::<u64>(&cache).await, 8);
    assert_eq!(generic::size::<u8>(&cache).await, 1);
    assert_eq!(cache.stats().hits, 1);
}

#[tokio::test]
async fn templates_name_const_generic_parameters() {
    let cache = Cache::memory();
    assert_eq!(generic::grid::<3>(&cache, 5).await, "3x5");
    assert_eq!(generic::grid::<4>(&cache, 5).await, "4x5");
    assert_eq!(
        cache.get::<String>("grid:3:5").await.unwrap().as_deref(),
        Some("3x5")
    );
    generic::invalidate_grid::<3>(&cache, 5).await.unwrap();
    assert_eq!(cache.get::<String>("grid:3:5").await.unwrap(), None);
    assert_eq!(
        cache.get::<String>("grid:4:5").await.unwrap().as_deref(),
        Some("4x5")
    );
}

#[tokio::test]
async fn the_default_key_reads_as_the_call() {
    let cache = Cache::memory();
    let module = module_path!();
    paths::a(&cache, "x:y".into(), String::new()).await;
    let key = format!("{module}::paths::a(x%3Ay,)");
    assert!(cache.get::<Answer>(&key).await.unwrap().is_some(), "{key}");

    let users = shop::Users {
        cache: cache.clone(),
    };
    users.name(7).await;
    let key = format!("{module}::shop::Users::name(7)");
    assert!(cache.get::<String>(&key).await.unwrap().is_some(), "{key}");

    generic::times::<3>(&cache, 2).await;
    let key = format!("{module}::generic::times<3>(2)");
    assert!(cache.get::<u64>(&key).await.unwrap().is_some(), "{key}");

    generic::size::<String>(&cache).await;
    let key = format!("{module}::generic::size<alloc::string::String>()");
    assert!(cache.get::<usize>(&key).await.unwrap().is_some(), "{key}");

    shop::Named::label(&users).await;
    let key = format!(
        "%3C{module}::shop::Users%20as%20{module}::shop::Named%3E::label[{module}::shop::Users]()"
    );
    assert!(cache.get::<String>(&key).await.unwrap().is_some(), "{key}");

    let shelf = shop::Shelf {
        cache: cache.clone(),
        item: 0u8,
    };
    shelf.describe(1).await;
    let key = format!("{module}::shop::Shelf%3C_%3E::describe[{module}::shop::Shelf%3Cu8%3E](1)");
    assert!(cache.get::<String>(&key).await.unwrap().is_some(), "{key}");
}

/// One call of one of the functions of `paths`, by index, with arguments drawn for any of them:
/// each function takes the ones it needs.
#[derive(Clone, Debug, PartialEq)]
struct Call {
    function: usize,
    x: String,
    y: String,
}

impl Call {
    async fn run(&self, cache: &Cache) -> Answer {
        let (x, y) = (self.x.clone(), self.y.clone());
        match self.function {
            0 => paths::a(cache, x, y).await,
            1 => paths::ab(cache, x).await,
            2 => paths::none(cache).await,
            3 => paths::a::b(cache).await,
            _ => paths::a::c(cache, x).await,
        }
    }

    /// What the call returns: the same for two calls exactly when they may share an entry.
    fn expected(&self) -> Answer {
        let (x, y) = (self.x.as_str(), self.y.as_str());
        match self.function {
            0 => answer("a", &[x, y]),
            1 => answer("ab", &[x]),
            2 => answer("none", &[]),
            3 => answer("a::b", &[]),
            _ => answer("a::c", &[x]),
        }
    }
}

/// Arguments dense in what could confuse a key: path separators, the argument separator and
/// the brackets around arguments, the names of the other functions, escapes, the empty string;
/// and now and then any text at all.
fn argument() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "(:|,|b|c|a::b|\\(|\\)|%|<|é|){0,3}",
        1 => any::<String>(),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    (0..5usize, argument(), argument()).prop_map(|(function, x, y)| Call { function, x, y })
}

/// Runs `calls` in order on one fresh cache, twice: each call, a miss or a hit, must return its
/// own answer.
fn assert_own_entries(calls: &[Call]) -> Result<(), TestCaseError> {
    runtime().block_on(async {
        let cache = Cache::memory();
        for call in calls.iter().chain(calls) {
            prop_assert_eq!(call.run(&cache).await, call.expected(), "{:?}", calls);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn calls_of_different_functions_never_share_an_entry(
        calls in proptest::collection::vec(call(), 2..24),
    ) {
        assert_own_entries(&calls)?;
    }
}

#[test]
fn every_short_call_has_its_own_entry() {
    // Every pair of calls whose arguments are drawn from a few characters that once collided.
    let values = ["", "b", "c", ":", "a::b", "(", ",", ")"];
    let mut calls = Vec::new();
    for function in 0..5 {
        for x in values {
            for y in values {
                calls.push(Call {
                    function,
                    x: x.to_owned(),
                    y: y.to_owned(),
                });
            }
        }
    }
    runtime().block_on(async {
        let cache = Cache::memory();
        for call in &calls {
            assert_eq!(call.run(&cache).await, call.expected(), "{call:?}");
        }
        // Second round: every call is served its own entry.
        for call in &calls {
            assert_eq!(call.run(&cache).await, call.expected(), "{call:?}");
        }
    });
}

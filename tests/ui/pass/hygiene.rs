#![deny(unused_qualifications, warnings)]

// The expansion must reach `::core`, never a `core` of the user's crate.
#[allow(dead_code)]
mod core {}

#[no_implicit_prelude]
mod without_prelude {
    use ::cachemacro_runtime::{cache_invalidate, cache_put, cached};

    #[cached(ttl = 60, key = "user:<id>")]
    pub async fn user(id: u64) -> ::std::option::Option<::std::string::String> {
        ::std::option::Option::Some(::std::format!("user {id}"))
    }

    #[cached(cache = cache, key = "counted:<id>")]
    pub async fn counted(cache: &::cachemacro_runtime::Cache, id: u64) -> u64 {
        id
    }

    #[cached]
    pub async fn plain(id: u64, name: ::std::string::String) -> ::std::result::Result<u64, u8> {
        let _ = name;
        ::std::result::Result::Ok(id)
    }

    #[cached(key = "tagged:<id>", tags = ["all", "id:<id>"], version = 2, sliding = true)]
    pub async fn tagged(id: u64) -> u64 {
        id
    }

    #[cache_put(key = "user:<id>", tags = ["all"], ttl_profile = "users")]
    pub async fn put(id: u64) -> ::std::option::Option<::std::string::String> {
        ::std::option::Option::Some(::std::format!("user {id}"))
    }

    #[cache_invalidate(keys = ["user:<id>"], tags = ["id:<id>"])]
    pub async fn invalidate(id: u64) -> ::std::result::Result<(), u8> {
        let _ = id;
        ::std::result::Result::Ok(())
    }
}

// Parameters named like the expansion's locals are the user's own.
#[cachemacro_runtime::cached]
pub async fn shadowing(__cache: u64, __key: u64) -> u64 {
    __cache + __key
}

fn main() {
    let _ = without_prelude::user(1);
    let _ = without_prelude::plain(1, ::std::string::String::new());
    let cache = cachemacro_runtime::Cache::memory();
    let _ = without_prelude::counted(&cache, 1);
    let _ = without_prelude::invalidate_user(1);
    let _ = without_prelude::refresh_counted(&cache, 1);
    let _ = without_prelude::tagged(1);
    let _ = without_prelude::put(1);
    let _ = without_prelude::invalidate(1);
    let _ = shadowing(1, 2);
}

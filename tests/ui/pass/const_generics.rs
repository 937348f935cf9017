use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};

pub struct Grid<const W: usize> {
    cache: Cache,
}

impl<const W: usize> Grid<W> {
    // A const parameter of the function may be named like any parameter; the impl's `W` is out
    // of the attribute's sight.
    #[cached(cache = self.cache, key = "grid:<H>:<x>")]
    pub async fn cell<const H: usize>(&self, x: u64) -> u64 {
        (W * H) as u64 + x
    }

    // In the default key: the Self type carries `W`, the generic arguments `H`.
    #[cached(cache = self.cache)]
    pub async fn area<const H: usize>(&self) -> usize {
        W * H
    }
}

#[cached(key = "row:<N>/<id>", tags = ["rows:<N>"])]
pub async fn row<const N: u8, T: Default + serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(
    id: u64,
) -> Option<T> {
    let _ = id;
    Some(T::default())
}

#[cache_put(key = "row:<N>/<id>")]
pub async fn put_row<const N: u8>(id: u64, value: u64) -> u64 {
    let _ = id;
    value
}

#[cache_invalidate(keys = ["row:<N>/<id>"], tags = ["rows:<N>"])]
pub async fn delete_row<const N: u8>(id: u64) {
    let _ = id;
}

#[cached]
pub async fn flag<const ON: bool, const C: char>(id: u64) -> String {
    format!("{ON}{C}{id}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let grid = Grid::<2> {
        cache: Cache::memory(),
    };
    assert_eq!(grid.cell::<3>(1).await, 7);
    grid.invalidate_cell::<3>(1).await.unwrap();
    assert_eq!(grid.refresh_area::<4>().await, 8);
    assert_eq!(row::<1, u64>(5).await, Some(0));
    assert_eq!(put_row::<1>(5, 9).await, 9);
    delete_row::<1>(5).await;
    assert_eq!(flag::<true, ':'>(1).await, "true:1");
}

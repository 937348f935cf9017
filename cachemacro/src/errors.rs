//! Collecting every error of one expansion, so the user sees all of them at once.

/// The errors found so far, combined into one `syn::Error`.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Records `error` next to the ones already found.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// `Err` with every recorded error if there was at least one.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(combined) => Err(combined),
            None => Ok(()),
        }
    }
}

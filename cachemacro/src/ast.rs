//! The annotated function as the expansion needs it.
//!
//! Two shapes are accepted:
//!
//! - an `async fn`, written by the user;
//! - a method that `#[async_trait]` has already rewritten. `#[async_trait]` sits on the impl
//!   block, so it expands before the `#[cached]` on a method inside it and hands us
//!   `fn get(&self) -> Pin<Box<dyn Future<Output = T> + Send + '_>> { Box::pin(async move {..}) }`.
//!   We then wrap the inner `async move` block and cache `T`.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::punctuated::{Pair, Punctuated};
use syn::{
    parse_quote_spanned, AttrStyle, Attribute, Block, Expr, ExprAsync, ExprCall, FnArg,
    GenericArgument, GenericParam, Ident, ItemFn, Pat, PatType, PathArguments, ReturnType,
    Signature, Stmt, Type, TypeParamBound, Visibility,
};

use crate::attr::Macro;

/// An annotated function, split into the parts the expansion re-emits or rewrites.
pub(crate) struct Function {
    pub outer_attrs: Vec<Attribute>,
    pub inner_attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub body: Body,
    /// What a caller gets after `.await`: the declared return type, `()` if none.
    pub output: Type,
    pub returns: Returns,
}

/// Where the code that loads a missing value lives.
pub(crate) enum Body {
    /// The block of an `async fn`.
    Async(Box<Block>),
    /// `Box::pin(loader)`, as written by `#[async_trait]`: `boxing` is the call without its
    /// argument.
    AsyncTrait {
        boxing: Box<ExprCall>,
        loader: Box<ExprAsync>,
    },
}

/// How the runtime treats the function's result, read from the last segment of its type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returns {
    /// `Result<T, E>`, `io::Result<T>`, ...: only `Ok` values are cached.
    Result,
    /// `Option<T>`: `None` is cached for the negative ttl.
    Option,
    /// Anything else: every value is cached.
    Plain,
}

/// A generic parameter that the default key renders: lifetimes are erased by then, and leave no
/// trace in what a call returns.
pub(crate) enum KeyGeneric<'a> {
    /// Rendered as its type's name.
    Type(&'a Ident),
    /// Rendered as its value.
    Const(&'a Ident),
}

/// A parameter as a lending loader sees it (`expand.rs`, `lend.rs` in the runtime).
pub(crate) enum Lendable<'a> {
    /// `&self`.
    Receiver,
    /// `name: &T`: lent from a holder of a `T`.
    Borrowed { name: &'a Ident, referent: &'a Type },
    /// `name: T` with an owned `T`: moved.
    Owned { name: &'a Ident, ty: &'a Type },
}

/// A parameter as the default key sees it.
pub(crate) enum Binding<'a> {
    Named(&'a Ident),
    /// A destructuring pattern: it has no single value to render.
    Pattern(&'a Pat),
}

impl Function {
    /// Splits `item`, or explains why `attribute` cannot apply to it.
    pub(crate) fn from_item(item: ItemFn, attribute: Macro) -> syn::Result<Self> {
        let ItemFn {
            attrs,
            vis,
            sig,
            block,
        } = item;
        let (outer_attrs, inner_attrs) = attrs
            .into_iter()
            .partition(|attr| matches!(attr.style, AttrStyle::Outer));
        let (body, output) = if sig.asyncness.is_some() {
            let output = match &sig.output {
                ReturnType::Type(_, ty) => (**ty).clone(),
                ReturnType::Default => parse_quote_spanned!(sig.ident.span()=> ()),
            };
            (Body::Async(block), output)
        } else if let Some((boxing, loader, output)) = async_trait_parts(&sig, *block) {
            let body = Body::AsyncTrait {
                boxing: Box::new(boxing),
                loader: Box::new(loader),
            };
            (body, output)
        } else {
            return Err(syn::Error::new(
                sig.fn_token.span,
                format!("{} requires an `async fn`", attribute.display()),
            ));
        };
        let returns = Returns::of(&output);
        Ok(Function {
            outer_attrs,
            inner_attrs,
            vis,
            sig,
            body,
            output,
            returns,
        })
    }

    /// The type of the values stored in the cache, inside the declared return type: `T` of
    /// `Result<T, E>` or `Option<T>`, else the whole type. `None` when it is not written as a
    /// type argument (`Result<T, E>` through an alias that takes lifetimes or consts only).
    pub(crate) fn stored(&self) -> Option<&Type> {
        stored_in(&self.output, self.returns)
    }

    /// Whether the function is a method taking some form of `self`.
    pub(crate) fn has_receiver(&self) -> bool {
        self.sig.receiver().is_some()
    }

    /// Whether the body can run after its caller has returned, judged from the signature alone:
    /// a free function without generics whose parameters own their values. Anything that might
    /// borrow rules it out: a receiver, a generic parameter of any kind, and in a parameter a
    /// reference, a lifetime, `impl Trait`, `Self` or a `ref` binding. A method rewritten by
    /// `#[async_trait]` always borrows, through the lifetimes it adds.
    pub(crate) fn can_outlive_caller(&self) -> bool {
        matches!(self.body, Body::Async(_))
            && !self.has_receiver()
            && self.sig.generics.params.is_empty()
            && self.typed_params().all(|param| {
                !may_borrow(param.ty.to_token_stream()) && !may_borrow(param.pat.to_token_stream())
            })
    }

    /// The parameters, when the body can be moved into a sibling fn whose refreshes own what it
    /// borrows: an `async fn` without generic parameters or `impl Trait` in its return type, whose
    /// parameters are `&self`, shared references to types that borrow nothing themselves, or
    /// owned values, each bound to a plain name. `None` for anything else: a `&mut`, a lifetime
    /// or `Self` inside a parameter's type, a destructuring pattern.
    pub(crate) fn lendable(&self) -> Option<Vec<Lendable<'_>>> {
        if !matches!(self.body, Body::Async(_))
            || !self.sig.generics.params.is_empty()
            || mentions_ident(self.output.to_token_stream(), "impl")
        {
            return None;
        }
        self.sig
            .inputs
            .iter()
            .map(|input| match input {
                FnArg::Receiver(receiver) => {
                    let shared_ref = receiver.reference.is_some()
                        && receiver.mutability.is_none()
                        && receiver.colon_token.is_none();
                    shared_ref.then_some(Lendable::Receiver)
                }
                FnArg::Typed(param) => {
                    let Pat::Ident(pat) = &*param.pat else {
                        return None;
                    };
                    if pat.by_ref.is_some() || pat.subpat.is_some() {
                        return None;
                    }
                    match ungrouped(&param.ty) {
                        Type::Reference(reference) => {
                            let referent = &*reference.elem;
                            // `&dyn Trait` is `&'a (dyn Trait + 'a)`: the object borrows too.
                            (reference.mutability.is_none()
                                && !may_borrow(referent.to_token_stream())
                                && !mentions_ident(referent.to_token_stream(), "dyn"))
                            .then_some(Lendable::Borrowed {
                                name: &pat.ident,
                                referent,
                            })
                        }
                        ty => (!may_borrow(ty.to_token_stream())).then_some(Lendable::Owned {
                            name: &pat.ident,
                            ty: &param.ty,
                        }),
                    }
                }
            })
            .collect()
    }

    /// Whether `Self` can be written in the body: the function takes `self` or its signature
    /// names `Self`, which only a function inside an impl or a trait may do. An associated
    /// function that does neither may still be inside one, but nothing shows it.
    pub(crate) fn names_self(&self) -> bool {
        fn mentions_self(tokens: TokenStream) -> bool {
            tokens.into_iter().any(|token| match token {
                TokenTree::Ident(ident) => ident == "Self",
                TokenTree::Group(group) => mentions_self(group.stream()),
                TokenTree::Punct(_) | TokenTree::Literal(_) => false,
            })
        }
        let Signature {
            generics,
            inputs,
            output,
            ..
        } = &self.sig;
        self.has_receiver()
            || mentions_self(inputs.to_token_stream())
            || mentions_self(output.to_token_stream())
            || mentions_self(generics.to_token_stream())
            || mentions_self(generics.where_clause.to_token_stream())
    }

    /// The type and const parameters, in their declared order.
    pub(crate) fn key_generics(&self) -> impl Iterator<Item = KeyGeneric<'_>> {
        self.sig
            .generics
            .params
            .iter()
            .filter_map(|param| match param {
                GenericParam::Type(param) => Some(KeyGeneric::Type(&param.ident)),
                GenericParam::Const(param) => Some(KeyGeneric::Const(&param.ident)),
                GenericParam::Lifetime(_) => None,
            })
    }

    /// The names a placeholder can start with: `self` for methods, then each named parameter,
    /// then each const generic parameter.
    pub(crate) fn placeholder_roots(&self) -> Vec<String> {
        let receiver = self.has_receiver().then(|| "self".to_owned());
        let named = self
            .typed_params()
            .filter_map(|param| match binding(param) {
                Some(Binding::Named(ident)) => Some(ident.to_string()),
                _ => None,
            });
        let consts = self.key_generics().filter_map(|generic| match generic {
            KeyGeneric::Const(ident) => Some(ident.to_string()),
            KeyGeneric::Type(_) => None,
        });
        receiver.into_iter().chain(named).chain(consts).collect()
    }

    /// Whether `name` is a type parameter of the function.
    pub(crate) fn has_type_param(&self, name: &str) -> bool {
        self.key_generics()
            .any(|generic| matches!(generic, KeyGeneric::Type(ident) if ident == name))
    }

    /// The parameters that make up the default key: all but `self`, `_` and those that
    /// `mentioned` (the names in the `cache` expression) contains.
    pub(crate) fn default_key_params<'a>(
        &'a self,
        mentioned: &'a [Ident],
    ) -> impl Iterator<Item = (&'a PatType, Binding<'a>)> {
        self.typed_params().filter_map(move |param| {
            let binding = binding(param)?;
            match binding {
                Binding::Named(ident) if mentioned.contains(ident) => None,
                _ => Some((param, binding)),
            }
        })
    }

    /// Whether `name` is a parameter bound by name and declared as a primitive integer, which a
    /// key renders without a formatter (`KeyBuilder::integer`).
    pub(crate) fn is_integer_param(&self, name: &str) -> bool {
        self.typed_params()
            .any(|param| names_integer(param).is_some_and(|ident| ident == name))
    }

    fn typed_params(&self) -> impl Iterator<Item = &PatType> {
        self.sig.inputs.iter().filter_map(|arg| match arg {
            FnArg::Typed(param) => Some(param),
            FnArg::Receiver(_) => None,
        })
    }
}

/// Whether the tokens of a parameter's type or pattern contain anything through which it might
/// borrow from its caller. Working on tokens sees through type macros and nested generics alike;
/// a false alarm only keeps refreshes in the caller's task.
fn may_borrow(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Punct(punct) => matches!(punct.as_char(), '&' | '\''),
        TokenTree::Ident(ident) => ident == "impl" || ident == "Self" || ident == "ref",
        TokenTree::Group(group) => may_borrow(group.stream()),
        TokenTree::Literal(_) => false,
    })
}

/// Whether `tokens` hold the identifier or keyword `name`.
fn mentions_ident(tokens: TokenStream, name: &str) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == name,
        TokenTree::Group(group) => mentions_ident(group.stream(), name),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

/// `ty` without the invisible groups and parentheses around it.
fn ungrouped(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => ungrouped(&group.elem),
        Type::Paren(paren) => ungrouped(&paren.elem),
        ty => ty,
    }
}

/// How `param` binds its value; `None` for `_`, which the body cannot observe.
/// The name `param` binds, when it binds a primitive integer by value (`id: u64`, `mut n: i32`),
/// not by reference (`ref id: u64`).
pub(crate) fn names_integer(param: &PatType) -> Option<&Ident> {
    const INTEGERS: [&str; 12] = [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
    ];
    let Pat::Ident(pat) = &*param.pat else {
        return None;
    };
    let Type::Path(path) = &*param.ty else {
        return None;
    };
    let integer = pat.by_ref.is_none()
        && pat.subpat.is_none()
        && path.qself.is_none()
        && path
            .path
            .get_ident()
            .is_some_and(|ident| INTEGERS.iter().any(|integer| ident == integer));
    integer.then_some(&pat.ident)
}

fn binding(param: &PatType) -> Option<Binding<'_>> {
    match &*param.pat {
        Pat::Ident(pat) => Some(Binding::Named(&pat.ident)),
        Pat::Wild(_) => None,
        pat => Some(Binding::Pattern(pat)),
    }
}

impl Returns {
    fn of(ty: &Type) -> Self {
        let Some((name, args)) = last_segment(ty) else {
            return Returns::Plain;
        };
        if name == "Result" && !args.is_empty() {
            Returns::Result
        } else if name == "Option" && args.len() == 1 {
            Returns::Option
        } else {
            Returns::Plain
        }
    }
}

/// The type stored when a function whose declared return type is `output` is cached: see
/// [`Function::stored`].
pub(crate) fn stored_in(output: &Type, returns: Returns) -> Option<&Type> {
    match returns {
        Returns::Plain => Some(output),
        Returns::Result | Returns::Option => match last_segment(output)?.1.first()? {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        },
    }
}

/// The last path segment of `ty` and its generic arguments, looking through parentheses and
/// the invisible groups that `macro_rules!` leaves around types.
fn last_segment(ty: &Type) -> Option<(&Ident, Vec<&GenericArgument>)> {
    match ty {
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let segment = path.path.segments.last()?;
            let args = match &segment.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().collect(),
                PathArguments::None | PathArguments::Parenthesized(_) => Vec::new(),
            };
            Some((&segment.ident, args))
        }
        _ => None,
    }
}

/// The single type argument of `ty` if its last segment is `name`, as in `Box<T>`.
fn type_argument<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    match last_segment(ty)? {
        (ident, args) if ident == name => match args.as_slice() {
            [GenericArgument::Type(arg)] => Some(arg),
            _ => None,
        },
        _ => None,
    }
}

/// Recognizes the output of `#[async_trait]`: a body that is only `Box::pin(async move {..})`
/// and a return type `Pin<Box<dyn Future<Output = T> + ..>>`. Returns the call, the async block
/// and `T`.
fn async_trait_parts(sig: &Signature, block: Block) -> Option<(ExprCall, ExprAsync, Type)> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    let output = boxed_future_output(ty)?.clone();
    let [Stmt::Expr(Expr::Call(mut call), None)] = <[Stmt; 1]>::try_from(block.stmts).ok()? else {
        return None;
    };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let path: Vec<String> = func
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    if !path.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    let Some(Expr::Async(loader)) = call.args.pop().map(Pair::into_value) else {
        return None;
    };
    call.args = Punctuated::new();
    Some((call, loader, output))
}

fn boxed_future_output(ty: &Type) -> Option<&Type> {
    let boxed = type_argument(ty, "Pin")?;
    let Type::TraitObject(object) = type_argument(boxed, "Box")? else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let segment = bound.path.segments.last()?;
        let PathArguments::AngleBracketed(args) = &segment.arguments else {
            return None;
        };
        if segment.ident != "Future" {
            return None;
        }
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn can_outlive_caller(item: ItemFn) -> bool {
        match Function::from_item(item, Macro::Cached) {
            Ok(func) => func.can_outlive_caller(),
            Err(error) => panic!("unexpected error: {error}"),
        }
    }

    #[test]
    fn owned_parameters_let_the_body_outlive_the_caller() {
        let items: [ItemFn; 4] = [
            parse_quote!(
                async fn f() {}
            ),
            parse_quote!(
                async fn f(id: u64, name: String, ids: Vec<u64>) -> u64 {}
            ),
            parse_quote!(
                async fn f(mut job: Box<dyn Fn() + Send>, (a, b): (u8, u8)) {}
            ),
            parse_quote!(
                async fn f(cache: Arc<Cache>) -> Option<Vec<String>> {}
            ),
        ];
        for item in items {
            let text = item.sig.to_token_stream().to_string();
            assert!(can_outlive_caller(item), "{text}");
        }
    }

    #[test]
    fn anything_that_may_borrow_keeps_the_body_in_the_caller() {
        let items: [ItemFn; 14] = [
            parse_quote!(
                async fn f(&self) {}
            ),
            parse_quote!(
                async fn f(&mut self) {}
            ),
            parse_quote!(
                async fn f(self) {}
            ),
            parse_quote!(
                async fn f(self: Arc<Self>) {}
            ),
            parse_quote!(
                async fn f<T>(id: u64) {}
            ),
            parse_quote!(
                async fn f<'a>(id: u64) {}
            ),
            parse_quote!(
                async fn f<const N: usize>(id: u64) {}
            ),
            parse_quote!(
                async fn f(name: &str) {}
            ),
            parse_quote!(
                async fn f(name: Cow<'static, str>) {}
            ),
            parse_quote!(
                async fn f(parse: fn(&str) -> u64) {}
            ),
            parse_quote!(
                async fn f(label: impl Display) {}
            ),
            parse_quote!(
                async fn f(labels: Vec<impl Display>) {}
            ),
            parse_quote!(
                async fn f(other: Self) {}
            ),
            parse_quote!(
                async fn f(ref name: String) {}
            ),
        ];
        for item in items {
            let text = item.sig.to_token_stream().to_string();
            assert!(!can_outlive_caller(item), "{text}");
        }
    }

    #[test]
    fn async_trait_methods_stay_in_the_caller() {
        assert!(!can_outlive_caller(parse_quote!(
            fn make() -> Pin<Box<dyn Future<Output = u64> + Send>> {
                Box::pin(async move { 1 })
            }
        )));
    }
}

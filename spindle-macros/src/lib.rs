//! The `#[spindle::main]` and `#[spindle::test]` attributes.
//!
//! Do not depend on this crate directly: the `spindle` crate re-exports both
//! attributes as `spindle::main` and `spindle::test` under its default
//! `macros` feature, and the code they generate names `::spindle`.
//!
//! # What they do
//!
//! Both attributes turn a plain, blocking function into one whose body runs
//! as a coroutine on a freshly built `spindle::Runtime`. The calling OS
//! thread blocks until the body returns; the body's value is the function's
//! value, and a panic in the body is re-raised on the calling thread. There
//! is no `async` anywhere: blocking calls inside the body park the
//! coroutine, not the worker thread.
//!
//! ```ignore
//! #[spindle::main(workers = 2)]
//! fn main() -> Result<(), std::num::ParseIntError> {
//!     let n: u32 = "42".parse()?;
//!     println!("{n}");
//!     Ok(())
//! }
//! ```
//!
//! expands to
//!
//! ```ignore
//! fn main() -> Result<(), std::num::ParseIntError> {
//!     ::spindle::Runtime::builder()
//!         .workers(2)
//!         .build()
//!         .expect("failed to build the spindle runtime for `#[spindle::main]`")
//!         .block_on(move || -> Result<(), std::num::ParseIntError> {
//!             let n: u32 = "42".parse()?;
//!             println!("{n}");
//!             Ok(())
//!         })
//! }
//! ```
//!
//! The runtime is a temporary of the function's tail expression, so it is
//! dropped, and its documented shutdown runs, as soon as `block_on` returns
//! and before the function itself returns. Without `workers = N` the
//! `.workers(..)` call is left out and the builder's default applies.
//!
//! `#[spindle::test]` generates the same body and puts
//! `#[::core::prelude::v1::test]` in front of the function's own attributes:
//!
//! ```ignore
//! #[spindle::test]
//! #[should_panic(expected = "boom")]
//! fn panics_reach_the_test_harness() {
//!     panic!("boom");
//! }
//! ```
//!
//! (The examples are `ignore`d because this crate cannot depend on
//! `spindle` in its doctests; `spindle/tests/macros.rs` exercises both
//! attributes, and `spindle/tests/ui/` holds one compile-fail case per
//! misuse with its expected error.)
//!
//! # Arguments
//!
//! | argument | meaning | default |
//! | --- | --- | --- |
//! | `workers = N` | `Builder::workers(N)`, the number of worker threads: an integer literal of at least 1 | the builder's default |
//! | `crate = "path"` | the path to the `spindle` crate, for crates that reach it through a re-export | `::spindle` |
//!
//! # Signatures accepted
//!
//! * Any return type, including `Result<(), E>`: the body becomes the body of
//!   a closure annotated with the function's return type, so `return` and
//!   `?` behave as in the plain function. (A return type mentioning
//!   `impl Trait` is left to inference, since a closure cannot name it.)
//!   Whatever `block_on` requires of the closure and its output (such as
//!   `Send`) applies to the body and the return type.
//! * Attributes and doc comments on the function are kept on the generated
//!   function (`#[should_panic]`, `#[ignore]`, `#[allow(..)]`, ...).
//! * `#[spindle::main]` may be put on a function that is not named `main`,
//!   as `#[tokio::main]` may. It then becomes an ordinary function that
//!   builds a runtime, runs its body on it, shuts the runtime down and
//!   returns the body's value; this suits a binary whose `main` parses its
//!   arguments before starting the runtime. We allow it rather than insist
//!   on the name because nothing in the expansion depends on it.
//!
//! # Misuse
//!
//! Each of these is a compile error pointing at the offending token:
//! `async fn` (spindle coroutines are plain functions), `const`, `unsafe`
//! and `extern` functions, parameters, generic parameters or a `where`
//! clause, a second test attribute next to `#[spindle::test]`, unknown or
//! repeated arguments, a `workers` value that is not an integer literal of
//! at least 1, and an attribute on an item that is not a function. The
//! erroneous function is replaced by an empty one of the same name, so the
//! error is not followed by "`main` function not found" or by errors from
//! its body.

use proc_macro::TokenStream;
use proc_macro2::{Literal, Span, TokenStream as TokenStream2, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, LitInt, LitStr, Path, ReturnType, Type};

/// Runs `main` (or any function without parameters) as a coroutine on a new
/// spindle runtime.
///
/// ```ignore
/// #[spindle::main]
/// fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     let port: u16 = std::env::var("PORT")?.parse()?;
///     println!("would listen on {port}");
///     Ok(())
/// }
/// ```
///
/// The body runs as a coroutine inside `Runtime::block_on`; the calling
/// thread blocks until it returns, its value is returned and its panic is
/// re-raised. The runtime is dropped, and shut down, right after the body
/// returns. See the [crate documentation](crate) for the exact expansion.
///
/// # Arguments
///
/// * `workers = N`: the number of worker threads, an integer literal of at
///   least 1; the builder's default when absent.
/// * `crate = "path"`: the path to the `spindle` crate when it is reached
///   through a re-export; `::spindle` when absent.
///
/// ```ignore
/// #[spindle::main(workers = 1)]
/// fn main() {
///     println!("one worker thread");
/// }
/// ```
///
/// The function may have any name (not only `main`), any return type, and
/// any other attributes, which are kept. It may not be `async`, `const`,
/// `unsafe` or `extern`, take parameters, or be generic.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), &item.into()).into()
}

/// Runs a test function as a coroutine on a new spindle runtime.
///
/// ```ignore
/// #[spindle::test]
/// fn adds() {
///     assert_eq!(2 + 2, 4);
/// }
/// ```
///
/// The attribute adds `#[test]` (do not write a second one) and keeps every
/// other attribute, so `#[should_panic]` and `#[ignore]` work as usual: a
/// panic in the body is re-raised on the test thread. Tests may return a
/// `Result`:
///
/// ```ignore
/// #[spindle::test(workers = 2)]
/// fn parses() -> Result<(), std::num::ParseIntError> {
///     assert_eq!("42".parse::<u32>()?, 42);
///     Ok(())
/// }
/// ```
///
/// Each test builds its own runtime and shuts it down when the body returns.
///
/// # Arguments
///
/// The same as [`macro@main`]: `workers = N` and `crate = "path"`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), &item.into()).into()
}

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `#[spindle::main]`.
    Main,
    /// `#[spindle::test]`.
    Test,
}

impl Kind {
    /// The attribute as the user writes it, for error messages.
    fn attribute(self) -> &'static str {
        match self {
            Kind::Main => "#[spindle::main]",
            Kind::Test => "#[spindle::test]",
        }
    }
}

/// The parsed attribute arguments.
struct Args {
    /// `workers = N`, re-emitted as an unsuffixed `usize` literal.
    workers: Option<Literal>,
    /// `crate = "path"`; `::spindle` when absent.
    krate: Option<Path>,
}

/// Expands either attribute; never panics, reports misuse as
/// `compile_error!`s.
fn expand(kind: Kind, args: TokenStream2, item: &TokenStream2) -> TokenStream2 {
    let Ok(function) = syn::parse2::<ItemFn>(item.clone()) else {
        let error = syn::Error::new_spanned(
            first_token(item),
            format!("`{}` can only be applied to a function", kind.attribute()),
        );
        // Keep the item so that its other uses do not produce a cascade of
        // unrelated errors.
        let error = error.to_compile_error();
        return quote! { #error #item };
    };

    let mut errors: Option<syn::Error> = None;
    let mut report = |error: syn::Error| match &mut errors {
        Some(errors) => errors.combine(error),
        None => errors = Some(error),
    };

    let args = match parse_args(args) {
        Ok(args) => Some(args),
        Err(error) => {
            report(error);
            None
        }
    };
    check_signature(kind, &function, &mut report);

    if let (None, Some(args)) = (&errors, &args) {
        return generate(kind, args, function);
    }
    let errors = errors.map(|errors| errors.to_compile_error());
    let stand_in = stand_in(&function);
    quote! { #errors #stand_in }
}

/// The first token of `item`, the span of an error about the item as a
/// whole (an attribute there would be noise: point at the item's keyword).
fn first_token(item: &TokenStream2) -> TokenStream2 {
    let mut tokens = item.clone().into_iter().peekable();
    // Skip outer attributes: `#` followed by a bracketed group.
    while let Some(TokenTree::Punct(punct)) = tokens.peek() {
        if punct.as_char() != '#' {
            break;
        }
        tokens.next();
        tokens.next();
    }
    match tokens.next() {
        Some(token) => token.into_token_stream(),
        None => quote! {},
    }
}

/// Parses `workers = N, crate = "path"` in any order.
fn parse_args(args: TokenStream2) -> syn::Result<Args> {
    let mut workers = None;
    let mut krate = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("workers") {
            if workers.is_some() {
                return Err(meta.error("`workers` is given more than once"));
            }
            let value = expect_value(&meta, "workers", "workers = 4")?;
            workers = Some(parse_workers(value)?);
            Ok(())
        } else if meta.path.is_ident("crate") {
            if krate.is_some() {
                return Err(meta.error("`crate` is given more than once"));
            }
            let value = expect_value(&meta, "crate", "crate = \"spindle\"")?;
            let Some(value) = as_lit_str(&value) else {
                return Err(syn::Error::new_spanned(
                    value,
                    "`crate` must be a string literal naming a path, e.g. `crate = \"my_reexport::spindle\"`",
                ));
            };
            krate = Some(value.parse::<Path>()?);
            Ok(())
        } else {
            let name = meta.path.to_token_stream().to_string().replace(' ', "");
            Err(meta.error(format!(
                "unknown argument `{name}`; the accepted arguments are `workers = N` and `crate = \"path\"`"
            )))
        }
    });
    parser.parse2(args)?;
    Ok(Args { workers, krate })
}

/// Reads the `= value` after an argument name, with a hint when the `=` is
/// missing (`#[spindle::main(workers)]`).
fn expect_value(
    meta: &syn::meta::ParseNestedMeta<'_>,
    name: &str,
    example: &str,
) -> syn::Result<syn::Expr> {
    if !meta.input.peek(syn::Token![=]) {
        return Err(meta.error(format!("`{name}` needs a value, e.g. `{example}`")));
    }
    meta.value()?.parse::<syn::Expr>()
}

/// The string literal `expr` is, if it is one.
fn as_lit_str(expr: &syn::Expr) -> Option<&LitStr> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => Some(lit),
        _ => None,
    }
}

/// Validates `workers = N`: an integer literal, unsuffixed or `usize`, at
/// least 1.
fn parse_workers(value: syn::Expr) -> syn::Result<Literal> {
    let lit: &LitInt = match &value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(lit),
            ..
        }) => lit,
        _ => {
            return Err(syn::Error::new_spanned(
                value,
                "`workers` must be an integer literal of at least 1, e.g. `workers = 4`",
            ));
        }
    };
    if !matches!(lit.suffix(), "" | "usize") {
        return Err(syn::Error::new_spanned(
            lit,
            "`workers` is a `usize`: write the number without a suffix, e.g. `workers = 4`",
        ));
    }
    let n: usize = lit.base10_parse().map_err(|_| {
        syn::Error::new_spanned(lit, "`workers` is too large: it must fit in a `usize`")
    })?;
    if n == 0 {
        return Err(syn::Error::new_spanned(
            lit,
            "`workers` must be at least 1: a runtime needs a worker thread to run coroutines",
        ));
    }
    let mut literal = Literal::usize_unsuffixed(n);
    literal.set_span(lit.span());
    Ok(literal)
}

/// Reports every signature spindle cannot run as a coroutine body.
fn check_signature(kind: Kind, function: &ItemFn, report: &mut impl FnMut(syn::Error)) {
    let attribute = kind.attribute();
    let sig = &function.sig;
    if let Some(asyncness) = &sig.asyncness {
        report(syn::Error::new_spanned(
            asyncness,
            "spindle coroutines are plain functions: remove `async`; blocking calls park the coroutine",
        ));
    }
    if let Some(constness) = &sig.constness {
        report(syn::Error::new_spanned(
            constness,
            format!("`{attribute}` cannot be applied to a `const fn`: it starts a runtime"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        report(syn::Error::new_spanned(
            unsafety,
            format!(
                "`{attribute}` cannot be applied to an `unsafe fn`: use an `unsafe` block inside the body"
            ),
        ));
    }
    if let Some(abi) = &sig.abi {
        report(syn::Error::new_spanned(
            abi,
            format!("`{attribute}` cannot be applied to a function with an explicit ABI"),
        ));
    }
    if !sig.generics.params.is_empty() {
        report(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "`{attribute}` cannot be applied to a generic function: it must name one concrete body to run"
            ),
        ));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        report(syn::Error::new_spanned(
            where_clause,
            format!("`{attribute}` cannot be applied to a function with a `where` clause"),
        ));
    }
    if !sig.inputs.is_empty() || sig.variadic.is_some() {
        let message = match kind {
            Kind::Main if sig.ident == "main" => {
                "`main` cannot take parameters: read them with `std::env::args()` inside the body"
                    .to_owned()
            }
            Kind::Main => {
                format!("a `{attribute}` function cannot take parameters: it is called with none")
            }
            Kind::Test => format!(
                "a `{attribute}` function cannot take parameters: the test harness calls it with none"
            ),
        };
        match &sig.variadic {
            Some(variadic) if sig.inputs.is_empty() => {
                report(syn::Error::new_spanned(variadic, message));
            }
            _ => report(syn::Error::new_spanned(&sig.inputs, message)),
        }
    }
    if kind == Kind::Test {
        for attr in function.attrs.iter().filter(|attr| is_test_attribute(attr)) {
            report(syn::Error::new_spanned(
                attr,
                "a second test attribute is supplied: `#[spindle::test]` already adds `#[test]`, remove this one",
            ));
        }
    }
}

/// Whether `attr` is `#[test]` or another crate's `#[..::test]`.
fn is_test_attribute(attr: &Attribute) -> bool {
    let path = attr.path();
    path.segments
        .last()
        .is_some_and(|last| last.ident == "test")
        && matches!(attr.meta, syn::Meta::Path(_) | syn::Meta::List(_))
}

/// Generates the function that builds the runtime and runs the body on it.
fn generate(kind: Kind, args: &Args, function: ItemFn) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| quote! { ::spindle }, ToTokens::to_token_stream);
    let workers = args.workers.as_ref().map(|n| quote! { .workers(#n) });
    let expect = format!(
        "failed to build the spindle runtime for `{}`",
        kind.attribute()
    );
    // Annotate the closure with the function's return type so that `?` and
    // `return` in the body infer exactly as they would in the function.
    // Closures cannot name `impl Trait` types, so those are left to inference.
    let closure_output = match &sig.output {
        ReturnType::Default => quote! { -> () },
        ReturnType::Type(_, ty) if mentions_impl(ty) => quote! {},
        ReturnType::Type(arrow, ty) => quote! { #arrow #ty },
    };
    // Spanned at the body so that a type mismatch there points into it.
    let body = quote_spanned! {block.span()=>
        #krate::Runtime::builder()
            #workers
            .build()
            .expect(#expect)
            .block_on(move || #closure_output #block)
    };
    let test_attribute = match kind {
        Kind::Main => quote! {},
        Kind::Test => quote! { #[::core::prelude::v1::test] },
    };
    quote! {
        #test_attribute
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}

/// Whether a return type mentions `impl Trait`, which a closure cannot name.
fn mentions_impl(ty: &Type) -> bool {
    fn scan(tokens: TokenStream2) -> bool {
        tokens.into_iter().any(|token| match token {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => scan(group.stream()),
            _ => false,
        })
    }
    scan(ty.to_token_stream())
}

/// What is emitted next to the errors: a function with the same name and
/// visibility and nothing else, so that the errors are not followed by
/// "`main` function not found" or by unresolved calls to the function.
fn stand_in(function: &ItemFn) -> TokenStream2 {
    let cfgs = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"));
    let vis = &function.vis;
    let ident = &function.sig.ident;
    let span = Span::call_site();
    quote_spanned! {span=>
        #(#cfgs)*
        #[allow(dead_code)]
        #vis fn #ident() {}
    }
}

//! Which AWS SDK operations each Lambda's code can reach, read from the sources with `syn`.
//!
//! * **An SDK call** is a method call without arguments whose name is an operation of an SDK
//!   crate the file names (`aws_sdk_dynamodb`, ...), made on a value (a variable or a field:
//!   `self.client.put_item()`, `sqs.send_message()`), the first link of the SDK's fluent chain.
//!   The operations are the SDK's own: the folders under the crate's `src/operation/`, found
//!   with `cargo metadata`.
//! * **Reaching** follows calls by name through `ftgo-aws` (the only crate the functions link
//!   that talks to AWS; the domain crate has no AWS types): from the items a function's
//!   `main.rs` names, `Type::f` reaches the `f` of `impl Type`, `module::f` and `f` the free
//!   functions named `f`, and `.f()` every method named `f`. Names are not types, so this may
//!   reach more than the code does at run time (never less): a call it finds that the function
//!   does not make shows up as a list entry the function "does not need" to remove, or forces
//!   a rename.
//!
//! `#[cfg(test)]` items are left out, and so are the files of `#[cfg(test)] mod x;`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// An SDK operation: the crate's service (`dynamodb`, `s3`, ...) and the operation in snake
/// case, as the SDK's fluent client names it (`transact_write_items`).
pub type Operation = (String, String);

/// One function item of the crate: where it is and what it calls.
#[derive(Debug, Default)]
struct FnItem {
    module: Vec<String>,
    self_type: Option<String>,
    name: String,
    /// `a::b::f` paths named in the body (calls or function values), as segments.
    paths: Vec<Vec<String>>,
    /// `.m(...)` methods called in the body, with the receiver's type where the syntax says it
    /// (`self`, a field of `self`, a typed parameter).
    methods: Vec<(Option<String>, String, usize)>,
    /// How many arguments a method of this name takes (its receiver left out).
    arity: usize,
    /// SDK operations called in the body.
    operations: BTreeSet<Operation>,
    /// The types the item makes live: its own, its parameters', the ones it names
    /// (`Type::f`, `Type { .. }`).
    types: BTreeSet<String>,
}

/// Every SDK crate's operations, by service (`dynamodb` → {`put_item`, ...}).
pub type SdkOperations = BTreeMap<String, BTreeSet<String>>;

/// The operations of the `aws-sdk-*` crates this workspace resolves, from their sources.
pub fn sdk_operations(repository: &Path) -> SdkOperations {
    // The host's packages only: the others (Android, Windows, ...) may not be downloaded.
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(repository)
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let mut services = SdkOperations::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or("");
        let Some(service) = name.strip_prefix("aws-sdk-") else {
            continue;
        };
        let manifest = PathBuf::from(package["manifest_path"].as_str().expect("a manifest"));
        let folder = manifest.with_file_name("src").join("operation");
        let operations: BTreeSet<String> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                path.is_dir()
                    .then(|| path.file_name()?.to_str().map(str::to_owned))?
            })
            .collect();
        assert!(!operations.is_empty(), "{name}: no operations found");
        services
            .entry(service.replace('-', ""))
            .or_default()
            .extend(operations);
    }
    services
}

fn is_test_only(attributes: &[syn::Attribute]) -> bool {
    attributes.iter().any(|attribute| {
        attribute.path().is_ident("cfg")
            && attribute
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

/// The name of a type (`&Archive`, `Arc<Archive>` → `Archive`).
fn type_name(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(path) => {
            let last = path.path.segments.last()?;
            let name = last.ident.to_string();
            if let ("Arc" | "Box" | "Rc", syn::PathArguments::AngleBracketed(arguments)) =
                (name.as_str(), &last.arguments)
                && let Some(syn::GenericArgument::Type(inner)) = arguments.args.first()
            {
                return type_name(inner);
            }
            Some(name)
        }
        syn::Type::Reference(reference) => type_name(&reference.elem),
        syn::Type::Paren(paren) => type_name(&paren.elem),
        _ => None,
    }
}

/// Every named field's type in one file: (struct, field) → type name.
fn struct_fields(syntax: &syn::File, fields: &mut BTreeMap<(String, String), String>) {
    struct Structs<'a>(&'a mut BTreeMap<(String, String), String>);
    impl<'ast> Visit<'ast> for Structs<'_> {
        fn visit_item_struct(&mut self, item: &'ast syn::ItemStruct) {
            for field in &item.fields {
                if let (Some(name), Some(ty)) = (&field.ident, type_name(&field.ty)) {
                    self.0
                        .insert((item.ident.to_string(), name.to_string()), ty);
                }
            }
        }
    }
    Structs(fields).visit_file(syntax);
}

/// A function's parameters (`name: Type`); `_` for a type the syntax does not name (generic).
fn parameters(signature: &syn::Signature, generics: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut generics = generics.clone();
    generics.extend(
        signature
            .generics
            .type_params()
            .map(|p| p.ident.to_string()),
    );
    signature
        .inputs
        .iter()
        .filter_map(|input| match input {
            syn::FnArg::Typed(typed) => {
                let syn::Pat::Ident(name) = &*typed.pat else {
                    return None;
                };
                // A generic parameter's type is unknown: "_" is no type of the crate.
                let ty = type_name(&typed.ty)
                    .filter(|ty| !generics.contains(ty))
                    .unwrap_or_else(|| "_".to_owned());
                Some((name.ident.to_string(), ty))
            }
            syn::FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Whether an expression is a value (a variable or a field of one), not a call's result.
fn is_value(expression: &syn::Expr) -> bool {
    match expression {
        syn::Expr::Path(_) => true,
        syn::Expr::Field(field) => is_value(&field.base),
        syn::Expr::Reference(reference) => is_value(&reference.expr),
        syn::Expr::Paren(paren) => is_value(&paren.expr),
        _ => false,
    }
}

/// Collects the calls of one function body.
struct Body<'a> {
    item: FnItem,
    /// Parameter name → type name.
    parameters: BTreeMap<String, String>,
    /// (type, field) → the field's type name, for the whole crate.
    fields: &'a BTreeMap<(String, String), String>,
    /// The SDK services this file names, with their operations.
    services: &'a [(&'a String, &'a BTreeSet<String>)],
}

impl Body<'_> {
    /// The receiver's type, where the syntax tells it.
    fn receiver_type(&self, receiver: &syn::Expr) -> Option<String> {
        match receiver {
            syn::Expr::Path(path) => {
                let name = path.path.get_ident()?.to_string();
                if name == "self" {
                    self.item.self_type.clone()
                } else {
                    self.parameters.get(&name).cloned()
                }
            }
            syn::Expr::Field(field) => {
                let owner = self.receiver_type(&field.base)?;
                let syn::Member::Named(member) = &field.member else {
                    return None;
                };
                self.fields.get(&(owner, member.to_string())).cloned()
            }
            syn::Expr::Reference(reference) => self.receiver_type(&reference.expr),
            syn::Expr::Paren(paren) => self.receiver_type(&paren.expr),
            _ => None,
        }
    }
}

impl<'ast> Visit<'ast> for Body<'_> {
    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let name = call.method.to_string();
        let sdk = call.args.is_empty() && is_value(&call.receiver);
        let services: Vec<&String> = self
            .services
            .iter()
            .filter(|(_, operations)| sdk && operations.contains(&name))
            .map(|(service, _)| *service)
            .collect();
        match services.as_slice() {
            [] => {
                let receiver = self.receiver_type(&call.receiver);
                self.item.methods.push((receiver, name, call.args.len()));
            }
            [service] => {
                self.item.operations.insert(((*service).clone(), name));
            }
            several => panic!(
                "`.{name}()` in {}::{} is an operation of several SDKs the file names ({several:?}): \
                 split the file or teach scan.rs which one",
                self.item.module.join("::"),
                self.item.name
            ),
        }
        syn::visit::visit_expr_method_call(self, call);
    }

    fn visit_expr_struct(&mut self, literal: &'ast syn::ExprStruct) {
        if let Some(last) = literal.path.segments.last() {
            self.item.types.insert(last.ident.to_string());
        }
        syn::visit::visit_expr_struct(self, literal);
    }

    fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
        let segments: Vec<String> = path
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        // A parameter is a value, not a function of that name.
        if let [name] = segments.as_slice()
            && self.parameters.contains_key(name)
        {
            return;
        }
        if let [.., qualifier, _] = segments.as_slice()
            && qualifier.starts_with(char::is_uppercase)
            && qualifier != "Self"
        {
            self.item.types.insert(qualifier.clone());
        }
        self.item.paths.push(segments);
        syn::visit::visit_expr_path(self, path);
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        // Items nested in a body are scanned as the crate's own items; skip them here.
        let _ = item;
    }
}

/// Every function item of one file (free functions, methods, trait default methods).
struct Items<'a> {
    module: Vec<String>,
    self_type: Option<String>,
    /// The enclosing impl's generic type parameters.
    generics: BTreeSet<String>,
    fields: &'a BTreeMap<(String, String), String>,
    services: Vec<(&'a String, &'a BTreeSet<String>)>,
    found: Vec<FnItem>,
}

impl Items<'_> {
    fn body(&mut self, signature: &syn::Signature, block: &syn::Block) {
        let mut body = Body {
            item: FnItem {
                module: self.module.clone(),
                self_type: self.self_type.clone(),
                name: signature.ident.to_string(),
                arity: signature
                    .inputs
                    .iter()
                    .filter(|input| matches!(input, syn::FnArg::Typed(_)))
                    .count(),
                ..FnItem::default()
            },
            parameters: parameters(signature, &self.generics),
            fields: self.fields,
            services: &self.services,
        };
        body.visit_block(block);
        body.item.types.extend(body.parameters.values().cloned());
        body.item.types.extend(self.self_type.clone());
        self.found.push(body.item);
    }
}

impl<'ast> Visit<'ast> for Items<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let test_only = match item {
            syn::Item::Mod(item) => is_test_only(&item.attrs),
            syn::Item::Fn(item) => is_test_only(&item.attrs),
            syn::Item::Impl(item) => is_test_only(&item.attrs),
            _ => false,
        };
        if test_only {
            return;
        }
        match item {
            syn::Item::Fn(function) => self.body(&function.sig, &function.block),
            syn::Item::Impl(block) => {
                let outer = self
                    .self_type
                    .replace(type_name(&block.self_ty).unwrap_or_default());
                self.generics = block
                    .generics
                    .type_params()
                    .map(|p| p.ident.to_string())
                    .collect();
                for member in &block.items {
                    if let syn::ImplItem::Fn(method) = member
                        && !is_test_only(&method.attrs)
                    {
                        self.body(&method.sig, &method.block);
                    }
                }
                self.generics.clear();
                self.self_type = outer;
            }
            syn::Item::Trait(definition) => {
                let outer = self.self_type.replace(definition.ident.to_string());
                for member in &definition.items {
                    if let syn::TraitItem::Fn(method) = member
                        && let Some(block) = &method.default
                    {
                        self.body(&method.sig, block);
                    }
                }
                self.self_type = outer;
            }
            syn::Item::Mod(module) if module.content.is_some() => {
                self.module.push(module.ident.to_string());
                syn::visit::visit_item_mod(self, module);
                self.module.pop();
            }
            _ => {}
        }
    }
}

/// `a/b.rs`, `a/b/mod.rs` → `["a", "b"]`; `lib.rs`, `main.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .strip_prefix(src)
        .expect("file under src")
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("readable folder") {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn parse(file: &Path) -> (String, syn::File) {
    let text = std::fs::read_to_string(file).expect("readable source");
    let syntax = syn::parse_file(&text)
        .unwrap_or_else(|error| panic!("{} does not parse: {error}", file.display()));
    (text, syntax)
}

fn scan_file(
    file: &Path,
    module: Vec<String>,
    sdk: &SdkOperations,
    fields: &BTreeMap<(String, String), String>,
) -> Vec<FnItem> {
    let (text, syntax) = parse(file);
    let services = sdk
        .iter()
        .filter(|(service, _)| text.contains(&format!("aws_sdk_{service}")))
        .collect();
    let mut items = Items {
        module,
        self_type: None,
        generics: BTreeSet::new(),
        fields,
        services,
        found: Vec::new(),
    };
    items.visit_file(&syntax);
    items.found
}

/// The function items of a library crate, ready to be walked.
pub struct Crate {
    items: Vec<FnItem>,
    fields: BTreeMap<(String, String), String>,
    /// The types the crate implements methods on.
    types: BTreeSet<String>,
    /// The free functions, by module and name.
    free: BTreeSet<(Vec<String>, String)>,
}

impl Crate {
    /// Scans every source file under `src`.
    pub fn scan(src: &Path, sdk: &SdkOperations) -> Self {
        // Files of `#[cfg(test)] mod x;` declarations (and their children) are test code.
        let mut test_modules: Vec<Vec<String>> = Vec::new();
        for file in rust_files(src) {
            let module = module_of(src, &file);
            for item in parse(&file).1.items {
                if let syn::Item::Mod(declared) = item
                    && declared.content.is_none()
                    && is_test_only(&declared.attrs)
                {
                    let mut path = module.clone();
                    path.push(declared.ident.to_string());
                    test_modules.push(path);
                }
            }
        }
        let files: Vec<PathBuf> = rust_files(src)
            .into_iter()
            .filter(|file| {
                let module = module_of(src, file);
                !test_modules.iter().any(|test| module.starts_with(test))
            })
            .collect();
        let mut fields = BTreeMap::new();
        for file in &files {
            struct_fields(&parse(file).1, &mut fields);
        }
        let items: Vec<FnItem> = files
            .iter()
            .flat_map(|file| scan_file(file, module_of(src, file), sdk, &fields))
            .collect();
        let types = items
            .iter()
            .filter_map(|item| item.self_type.clone())
            .collect();
        let free = items
            .iter()
            .filter(|item| item.self_type.is_none())
            .map(|item| (item.module.clone(), item.name.clone()))
            .collect();
        Self {
            items,
            fields,
            types,
            free,
        }
    }

    /// The items a path (`Type::f`, `module::f`, `f`) or a method name (`.f()`) may name.
    fn targets<'a>(
        &'a self,
        caller: Option<&'a FnItem>,
        path: Option<&'a [String]>,
        method: Option<(&'a Option<String>, &'a str, usize)>,
        live: &'a BTreeSet<String>,
    ) -> impl Iterator<Item = usize> + 'a {
        self.items
            .iter()
            .enumerate()
            .filter_map(move |(index, item)| {
                let hit = match (path, method) {
                    // A receiver of a type of this crate: that type's methods; of any other type
                    // (unknown, or another crate's, which a binding may have shadowed): the method
                    // of that name of every live type.
                    (_, Some((Some(receiver), name, _))) if self.types.contains(receiver) => {
                        item.self_type.as_ref() == Some(receiver) && item.name == name
                    }
                    // Rust has no overloading: a method of another arity is another method.
                    (_, Some((_, name, arguments))) => {
                        item.self_type.as_ref().is_some_and(|ty| live.contains(ty))
                            && item.name == name
                            && item.arity == arguments
                    }
                    (Some([.., qualifier, name]), None) if item.name == *name => {
                        match (qualifier.as_str(), &item.self_type) {
                            ("Self", Some(ty)) => {
                                caller.and_then(|c| c.self_type.as_ref()) == Some(ty)
                            }
                            (q, Some(ty)) => q == ty,
                            (q, None) => {
                                !q.starts_with(char::is_uppercase)
                                    && (q == "crate"
                                        || q == "super"
                                        || q == "self"
                                        || item.module.last().is_some_and(|m| m == q)
                                        || q == "ftgo_aws" && item.module.is_empty())
                            }
                        }
                    }
                    // `f`: the caller's module's own `f` if it has one (a local function shadows
                    // the others), else every free `f` (imported by `use`).
                    (Some([name]), None) if item.self_type.is_none() && item.name == *name => {
                        caller.is_none_or(|caller| {
                            item.module == caller.module
                                || !self.free.contains(&(caller.module.clone(), name.clone()))
                        })
                    }
                    _ => false,
                };
                hit.then_some(index)
            })
    }

    /// The SDK operations reachable from the entry points a function's `main.rs` names.
    ///
    /// A method called on a receiver of unknown type (a call's result, a local) may be the
    /// method of that name of any type the reached code makes live (rapid type analysis):
    /// types it names, constructs or takes as parameters, and their fields' types. Walked to a
    /// fixed point, as each newly live type may be the receiver of a call already seen.
    pub fn reachable_from_main(&self, main: &Path, sdk: &SdkOperations) -> BTreeSet<Operation> {
        let roots = scan_file(main, Vec::new(), sdk, &self.fields);
        let mut reached: BTreeSet<usize> = BTreeSet::new();
        let mut live: BTreeSet<String> = BTreeSet::new();
        loop {
            let before = (reached.len(), live.len());
            let callers: Vec<&FnItem> = roots
                .iter()
                .chain(reached.iter().map(|&index| &self.items[index]))
                .collect();
            let mut found = BTreeSet::new();
            for caller in &callers {
                live.extend(caller.types.iter().cloned());
                let own = caller.module.is_empty() && caller.self_type.is_none();
                let context = (!own).then_some(*caller);
                for path in &caller.paths {
                    found.extend(self.targets(context, Some(path), None, &live));
                }
                for (receiver, method, arguments) in &caller.methods {
                    let call = (receiver, method.as_str(), *arguments);
                    found.extend(self.targets(context, None, Some(call), &live));
                }
            }
            reached.extend(found);
            let fields: Vec<String> = self
                .fields
                .iter()
                .filter(|((owner, _), _)| live.contains(owner))
                .map(|(_, ty)| ty.clone())
                .collect();
            live.extend(fields);
            if (reached.len(), live.len()) == before {
                break;
            }
        }
        roots
            .iter()
            .chain(reached.iter().map(|&index| &self.items[index]))
            .flat_map(|item| item.operations.iter().cloned())
            .collect()
    }
}

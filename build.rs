// `embed_migrations!` reads `migrations/` at compile time; without this a new or edited
// migration would not rebuild the crate (diesel_migrations' documented requirement).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

//! Plugin `upper`: the text in capitals.
wit_bindgen::generate!({ path: "../wit", world: "text-plugin" });

struct Upper;

impl Guest for Upper {
    fn process(input: String) -> Result<String, String> {
        Ok(input.to_uppercase())
    }
}

export!(Upper);

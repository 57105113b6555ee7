//! Plugin `wordcount`: how many words the text has.
wit_bindgen::generate!({ path: "../wit", world: "text-plugin" });

struct WordCount;

impl Guest for WordCount {
    fn process(input: String) -> Result<String, String> {
        Ok(input.split_whitespace().count().to_string())
    }
}

export!(WordCount);

//! A coordinator's browser, as far as the server can tell: cookies kept
//! the way a browser keeps them, forms posted with the page's CSRF token,
//! redirects not followed (so that tests see them).

use std::collections::BTreeMap;

use super::{Server, install_crypto};

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// An answer, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    /// The `Set-Cookie` lines, parsed.
    pub fn set_cookies(&self) -> Vec<cookie::Cookie<'static>> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| cookie::Cookie::parse(v.to_str().unwrap().to_string()).unwrap())
            .collect()
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(reqwest::header::LOCATION)
            .map(|v| v.to_str().unwrap())
    }

    /// The value of the page's first hidden field `name`.
    /// The text of a `<textarea>`, unescaped as a browser would.
    pub fn field_text(&self, id: &str) -> Option<String> {
        let open = format!("<textarea id=\"{id}\"");
        let at = self.text.find(&open)?;
        let start = at + self.text[at..].find('>')? + 1;
        let end = start + self.text[start..].find("</textarea>")?;
        // The five entities the template engine writes.
        Some(
            self.text[start..end]
                .replace("&#34;", "\"")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    }

    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self.text.find(&marker)? + marker.len();
        Some(self.text[at..].split('"').next()?.to_string())
    }
}

/// A browser on one server.
pub struct Browser {
    client: reqwest::blocking::Client,
    /// The server it talks to (another node of one deployment, say).
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    /// The `Origin` it sends with a POST (a browser always does).
    pub origin: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        install_crypto();
        Self {
            client: reqwest::blocking::Client::builder()
                .tls_danger_accept_invalid_certs(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            origin: Some(base.to_string()),
            cookies: BTreeMap::new(),
        }
    }

    fn keep(&mut self, r: reqwest::blocking::Response) -> Answer {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let answer = Answer {
            status,
            headers,
            text: r.text().unwrap(),
        };
        for c in answer.set_cookies() {
            if c.max_age().is_some_and(|a| a.is_zero()) {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_string(), c.value().to_string());
            }
        }
        answer
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn get(&mut self, path: &str) -> Answer {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .unwrap();
        self.keep(r)
    }

    /// POSTs `form`, URL-encoded.
    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(serde_urlencoded::to_string(form).unwrap());
        if let Some(o) = &self.origin {
            req = req.header(reqwest::header::ORIGIN, o);
        }
        let r = req.send().unwrap();
        self.keep(r)
    }

    /// POSTs a multipart form (a file upload).
    pub fn post_multipart(
        &mut self,
        path: &str,
        form: reqwest::blocking::multipart::Form,
    ) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .multipart(form);
        if let Some(o) = &self.origin {
            req = req.header(reqwest::header::ORIGIN, o);
        }
        let r = req.send().unwrap();
        self.keep(r)
    }

    /// Signs in through the form, as a person would.
    pub fn login(&mut self, name: &str, password: &str) -> Answer {
        let form = self.get("/login");
        assert_eq!(form.status, 200, "{}", form.text);
        let nonce = form.field("nonce").expect("the form's nonce");
        self.post(
            "/login",
            &[("name", name), ("password", password), ("nonce", &nonce)],
        )
    }

    /// Signs in through the form with an authenticator code as well.
    pub fn login_with_code(&mut self, name: &str, password: &str, code: &str) -> Answer {
        let form = self.get("/login");
        assert_eq!(form.status, 200, "{}", form.text);
        let nonce = form.field("nonce").expect("the form's nonce");
        self.post(
            "/login",
            &[
                ("name", name),
                ("password", password),
                ("code", code),
                ("nonce", &nonce),
            ],
        )
    }

    /// The CSRF token the signed-in pages carry.
    pub fn csrf(&mut self) -> String {
        let page = self.get("/account");
        assert_eq!(page.status, 200, "signed in: {}", page.text);
        page.field("csrf").expect("a CSRF field")
    }
}

impl Server {
    /// Adds an account with [`PASSWORD`].
    pub fn add_user(&self, name: &str, role: &str) {
        self.add_user_with(name, role, &[]);
    }

    /// Adds an account with [`PASSWORD`] and more `users add` options.
    pub fn add_user_with(&self, name: &str, role: &str, more: &[&str]) {
        let file = self.data.with_extension(format!("{name}.password"));
        std::fs::write(&file, PASSWORD).unwrap();
        let mut args = vec![
            "users",
            "add",
            name,
            "--role",
            role,
            "--password-file",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        self.cli(&args);
    }

    /// A browser signed in to a new account with `role`.
    pub fn signed_in(&self, name: &str, role: &str) -> Browser {
        self.add_user(name, role);
        let mut b = Browser::new(&self.url());
        let r = b.login(name, PASSWORD);
        assert_eq!(r.status, 303, "signed in: {}", r.text);
        b
    }
}

//! The page served at `/`: the exporter's name, version and links to what it serves.

use crate::version::BuildInfo;

/// A link on the landing page.
#[derive(Debug, Clone)]
pub struct Link {
    /// Path or URL.
    pub href: String,
    /// Link text.
    pub text: String,
}

/// Renders the page once at start; it never changes while the exporter runs.
pub(crate) fn render(info: &BuildInfo, description: &str, links: &[Link]) -> String {
    let mut items = String::new();
    for link in links {
        items.push_str(&format!(
            "      <li><a href=\"{}\">{}</a></li>\n",
            escape(&link.href),
            escape(&link.text)
        ));
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>{name}</title>
    <style>
      body {{ font-family: system-ui, sans-serif; margin: 0; }}
      header {{ background: #e6522c; color: #fff; padding: 0.6em 1.2em; }}
      header h1 {{ margin: 0; font-size: 1.5em; }}
      main {{ padding: 0 1.2em; }}
      footer {{ padding: 0 1.2em; color: #666; font-size: 0.9em; }}
    </style>
  </head>
  <body>
    <header><h1>{name}</h1></header>
    <main>
      <h2>{description}</h2>
      <ul>
{items}      </ul>
    </main>
    <footer><p>Version: {version} (revision {revision})</p></footer>
  </body>
</html>
"#,
        name = escape(info.program),
        description = escape(description),
        version = escape(info.version),
        revision = escape(info.revision),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

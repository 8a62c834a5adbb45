//! `make dashboard`: write the stack's CloudWatch dashboard body into sam/template.yaml, generated
//! from ops-core's metric catalogue and the functions the template creates (see
//! `ops_e2e::dashboard`).

use std::process::ExitCode;

use ops_e2e::dashboard::{body_in, body_text, template_path, with_body, Stack};

fn main() -> ExitCode {
    let path = template_path();
    let template = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("dashboard: cannot read {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let stack = Stack::of(&template);
    let body = body_text(&stack);
    if body_in(&template).as_deref() == Some(body.as_str()) {
        println!("dashboard: {} is up to date", path.display());
        return ExitCode::SUCCESS;
    }
    let written = match with_body(&template, &body) {
        Ok(written) => written,
        Err(error) => {
            eprintln!("dashboard: {error}; add the OpsDashboard resource first");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = std::fs::write(&path, written) {
        eprintln!("dashboard: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    println!(
        "dashboard: wrote the body for {} functions into {}",
        stack.functions.len(),
        path.display()
    );
    ExitCode::SUCCESS
}

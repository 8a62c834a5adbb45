//! The chat commands bastion-eip-associator answers: it is driven by events, so only `doctor`
//! (and `help`).

use ops_core::command::{CommandSet, DOCTOR};

/// doctor (and help).
pub const COMMANDS: CommandSet = CommandSet {
    commands: &[DOCTOR],
};

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::command::CommandError;
    use serde_json::json;

    #[test]
    fn doctor_and_help_are_commands_and_anything_else_gets_the_help() {
        let doctor = COMMANDS
            .parse("bastion-eip-associator", &json!({"command": "doctor"}))
            .unwrap();
        assert_eq!(doctor.name, "doctor");
        let help = COMMANDS
            .parse("bastion-eip-associator", &json!({"command": "help"}))
            .unwrap();
        assert_eq!(help.name, "help");
        let Err(CommandError::Unknown {
            help, suggestion, ..
        }) = COMMANDS.parse(
            "opsstack-bastion-eip-associator",
            &json!({"command": "docter"}),
        )
        else {
            panic!("an unknown command is refused");
        };
        assert_eq!(suggestion.as_deref(), Some("doctor"));
        assert!(help.contains("  doctor {} - check configuration"), "{help}");
        assert!(
            help.contains("--function-name opsstack-bastion-eip-associator"),
            "{help}"
        );
    }
}

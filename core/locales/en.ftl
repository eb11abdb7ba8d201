# Validation messages (core/src/forms/messages.rs). Each is shown after the
# field's label: "Ballots cast: required".
required = required
expected-yes-no = expected yes or no
expected-whole-number = expected a whole number
expected-number = expected a number
expected-text = expected text
expected-one-option = expected one option
expected-options = expected a list of options
out-of-range = { $value } is outside { $min }..{ $max }
too-long = longer than { $max } characters
not-an-option = { $value } is not an option
not-an-option-or-twice = { $value } is not an option, or is chosen twice
expected-time = expected a time as HH:MM
expected-date = expected a date as YYYY-MM-DD
expected-datetime = expected a date and time as YYYY-MM-DDTHH:MM
expected-acknowledge = expected a confirmation (true)
takes-no-answer = this is a note and takes no answer
miscalculated = { $value } differs from the calculated { $expected }
expected-media = expected attached media (SHA-256 references)
hidden-answered = answered, but not asked given the other answers
unknown-field = { $key } is not a question of form { $form } v{ $version }

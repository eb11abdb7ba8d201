# Жауаптарды тексеру хабарлары (core/src/forms/messages.rs).
required = міндетті сұрақ
expected-yes-no = «иә» немесе «жоқ» күтіледі
expected-whole-number = бүтін сан күтіледі
expected-number = сан күтіледі
expected-text = мәтін күтіледі
expected-one-option = бір нұсқа күтіледі
expected-options = нұсқалар тізімі күтіледі
out-of-range = { $value } { $min }..{ $max } аралығынан тыс
too-long = { $max } таңбадан ұзын
not-an-option = { $value } — мұндай нұсқа жоқ
not-an-option-or-twice = { $value } — мұндай нұсқа жоқ, немесе ол екі рет таңдалған
expected-time = уақыт СС:ММ түрінде күтіледі
expected-media = тіркелген файл күтіледі (SHA-256 сілтемесі)
hidden-answered = жауап берілген, бірақ басқа жауаптар бойынша бұл сұрақ қойылмайды
unknown-field = { $key } — { $form } v{ $version } формасында мұндай сұрақ жоқ

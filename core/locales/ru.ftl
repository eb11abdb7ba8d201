# Сообщения проверки ответов (core/src/forms/messages.rs).
required = обязательный вопрос
expected-yes-no = ожидается «да» или «нет»
expected-whole-number = ожидается целое число
expected-number = ожидается число
expected-text = ожидается текст
expected-one-option = ожидается один вариант
expected-options = ожидается список вариантов
out-of-range = { $value } вне диапазона { $min }..{ $max }
too-long = длиннее { $max } символов
not-an-option = { $value } — нет такого варианта
not-an-option-or-twice = { $value } — нет такого варианта, или он выбран дважды
expected-time = ожидается время в виде ЧЧ:ММ
expected-media = ожидается приложенный файл (ссылка SHA-256)
hidden-answered = есть ответ, но при других ответах этот вопрос не задаётся
unknown-field = { $key } — нет такого вопроса в форме { $form } v{ $version }

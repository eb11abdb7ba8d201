# The coordinator workspace, in English. Every id here is in ru.ftl and
# kk.ftl too (server/src/i18n.rs tests it). Role names (admin, supervisor,
# verifier, analyst) stay as they are typed on the command line.

nav-workspace = Workspace
nav-overview = Overview
nav-codes = Enrollment codes
nav-audit = Audit log
nav-users = Accounts
sign-out = Sign out
language = Language
language-apply = Change

sign-in = Sign in
sign-in-title = Observer coordinator: sign in
account-name = Account
password = Password
accounts-made-by = An administrator creates accounts with
login-expired = The sign-in form expired or came from another page; sign in again.
login-address-limit = Too many sign-in attempts from this address; try again in { $secs } seconds.
login-wrong = The account name or the password is wrong.
login-wait = Too many failed sign-ins on this account; try again in { $secs } seconds.

forbidden-title = Not allowed
forbidden-role = Your role, { $role }, may not do this: { $what }.
forbidden-roles = This needs the role { $roles }.
back-to-overview = Back to the overview
refused-title = Refused
back-to-workspace = Back to the workspace
refused-cross-site = This request came from another site's page and was refused.
refused-csrf = This form is not from your current session (it is old, or from another site); reload the page and try again.
refused-form = The form was not filled in as sent.
refused-query = The only parameter here is before, an entry number.
not-found-device = No such device.
not-found-account = No such account.
not-found-page = No such page.

may-read = read the overview
may-audit = read the audit log
may-users = manage accounts
may-revoke = revoke a device
may-codes = issue enrollment codes

overview-summary = { $devices } devices ({ $revoked } revoked) · { $records } records from { $stations } stations
overview-missing = { $missing } records known to exist but not received
log-size = log size
log-root = root
devices = Devices
col-device = device
col-observer = observer
col-stations = stations
col-last-contact = last contact
col-records = records
col-complete-to = complete to
col-declared = declared head
col-missing = missing (possible deletions)
col-conflicts = conflicts
col-quarantined = quarantined
col-status = status
none = none
status-active = active
status-revoked = revoked
revoke-link = revoke…
latest-records = Latest records
col-index = log index
col-received = received
col-captured = captured (device clock)
col-station = station
col-kind = kind
col-seq = seq
col-check = form check
col-media = media
col-answers = answers
not-in-registry = not in the registry

audit-intro = Every coordinator action, newest first, hash-chained and signed with the coordinator key. This command checks the whole chain:
audit-entries = Entries { $first } to { $last }
col-number = #
col-time = time
col-who = who
col-action = action
col-subject = subject
col-detail = detail
older-entries = Older entries

users-title = Coordinator accounts
col-account = account
col-role = role
col-last-sign-in = last sign-in
col-failed = failed attempts
col-state = state
state-active = active
state-disabled = disabled
disable-account = Disable { $name }
enable-account = Enable { $name }
add-account = Add an account
new-account-name = Account name
new-account-role = Role
role-analyst = analyst: read and export
role-verifier = verifier: review records
role-supervisor = supervisor: enrollment codes and assignments
role-admin = admin: everything
first-password = First password (at least 12 characters; they change it with users passwd)
add-account-button = Add the account
account-exists = An account named { $name } exists already.
own-account = You cannot disable your own account.

revoke-title = Revoke { $observer }'s device?
revoke-text = Device { $device }, stations { $stations }. Nothing more will be accepted from it; what it sends after this is kept in quarantine. This cannot be undone: the observer would need a new enrollment on a new key.
revoke-button = Revoke { $observer }'s device
cancel = Cancel
unnamed-observer = an unnamed observer

codes-title = Enrollment codes
code-for = Code for { $observer } at { $stations }
code-scan = Scan it with the Observer app, once. It expires in { $hours } hours; this page is not kept, so scan or print it now.
code-qr-alt = QR code of the enrollment code for { $observer }
code-type = Or type it:
issue-code = Issue a code
code-stations = Stations (ids from the registry, separated by commas or spaces)
code-observer = Observer's name
code-hours = Valid for (hours)
issue-code-button = Issue the code
an-observer = an observer

"""Every label and message at the counter, in English and Hindi.

Keys are stable; ``tr(key, lang)`` picks the language (falling back to English
so a missing translation never blanks a label). Field problems from the domain
rules are translated by field label and by the rule's sentence.
"""

from __future__ import annotations

import re
from typing import Literal

from opd_fallback.domain.errors import FIELD_LABELS, FieldProblem

Lang = Literal["en", "hi"]
LANGS: tuple[Lang, ...] = ("en", "hi")

STRINGS: dict[str, tuple[str, str]] = {
    # app, status bar, keys
    "app.title": ("OPD counter (offline fallback)", "ओपीडी काउंटर (ऑफ़लाइन)"),
    "status.tls_off": ("TLS CHECKS OFF", "TLS जाँच बंद"),
    "status.clock_off": ("CLOCK WRONG", "घड़ी गलत"),
    "status.clock_confirmed": ("clock confirmed", "घड़ी पुष्ट"),
    "status.online": ("Central: online", "केंद्र: ऑनलाइन"),
    "status.offline": ("Central: OFFLINE", "केंद्र: ऑफ़लाइन"),
    "status.unknown": ("Central: checking", "केंद्र: जाँच रहे हैं"),
    "status.no_server": ("Central: not set", "केंद्र: सेट नहीं"),
    "status.waiting": ("To sync: {n}", "सिंक बाकी: {n}"),
    "status.oldest": ("oldest {age}", "सबसे पुराना {age}"),
    "status.flagged": ("Need a person: {n}", "जाँच ज़रूरी: {n}"),
    "status.last_sync": ("Last sync: {when}", "अंतिम सिंक: {when}"),
    "status.never": ("never", "कभी नहीं"),
    "status.syncing": ("Syncing {done}/{total}", "सिंक हो रहा {done}/{total}"),
    "status.operator": ("Operator: {op}", "ऑपरेटर: {op}"),
    "status.no_operator": ("Not logged in", "लॉग इन नहीं"),
    "keys.home": (
        "F2 New  F3 Revisit  F4 Lab  F5 Void  F6 Reprint  F7 Queue  F8 Cash  F11 Review  F9 हिंदी  ^L Lock  ^Q Quit",
        "F2 नया  F3 पुनः  F4 लैब  F5 रद्द  F6 पुनर्मुद्रण  F7 कतार  F8 नकद  F11 समीक्षा  F9 English  ^L लॉक  ^Q बंद",
    ),
    "keys.form": (
        "Enter/Tab next  F10 Save  Esc Back  F9 हिंदी  ^L Lock  ^Q Quit",
        "Enter/Tab आगे  F10 सेव  Esc वापस  F9 English  ^L लॉक  ^Q बंद",
    ),
    "keys.lock": ("Enter unlock  F2 switch operator  F9 हिंदी", "Enter अनलॉक  F2 ऑपरेटर बदलें  F9 English"),
    "keys.list": (
        "↑↓ choose  Enter open  Esc Back  F9 हिंदी  ^L Lock  ^Q Quit",
        "↑↓ चुनें  Enter खोलें  Esc वापस  F9 English  ^L लॉक  ^Q बंद",
    ),
    # login and lock
    "login.title": ("Log in to the counter", "काउंटर पर लॉग इन करें"),
    "login.operator": ("Operator ID", "ऑपरेटर आईडी"),
    "login.pin": ("PIN", "पिन"),
    "login.button": ("Log in (Enter)", "लॉग इन (Enter)"),
    "login.failed": ("Wrong operator ID or PIN", "गलत ऑपरेटर आईडी या पिन"),
    "login.locked": (
        "Too many wrong PINs: this ID is locked; wait {wait} and try again, or ask a supervisor.",
        "बहुत बार गलत पिन: यह आईडी लॉक है; {wait} रुकें और फिर कोशिश करें, या सुपरवाइज़र से पूछें।",
    ),
    "login.checking": ("Checking…", "जाँच रहे हैं…"),
    "login.pin_format": ("PIN must be 4 to 8 digits", "पिन 4 से 8 अंकों का होना चाहिए"),
    "login.need_id": ("Enter your operator ID", "अपनी ऑपरेटर आईडी लिखें"),
    "lock.title": ("Counter locked", "काउंटर लॉक है"),
    "lock.hint": (
        "{op} is logged in. Enter the PIN to continue, or F2 to log in as someone else.",
        "{op} लॉग इन हैं। जारी रखने के लिए पिन लिखें, या किसी और के लिए F2 दबाएँ।",
    ),
    # home
    "home.title": ("What next?", "आगे क्या करें?"),
    "home.new": ("F2  New registration", "F2  नया पंजीकरण"),
    "home.revisit": ("F3  Revisit (find patient)", "F3  पुनः आगमन (मरीज़ खोजें)"),
    "home.lab": ("F4  Lab request", "F4  लैब जाँच"),
    "home.void": ("F5  Void a payment", "F5  भुगतान रद्द करें"),
    "home.reprint": ("F6  Reprint", "F6  फिर से छापें"),
    "home.queue": ("F7  Sync queue", "F7  सिंक कतार"),
    "home.cash": ("F8  Day-end cash summary", "F8  दिन का नकद सारांश"),
    "home.review": ("F11 Review flagged records (supervisor)", "F11 अटके रिकॉर्ड की समीक्षा (सुपरवाइज़र)"),
    "home.collect": ("F1 Sample collection (scan tubes)", "F1 सैंपल संग्रह (ट्यूब स्कैन)"),
    # registration form
    "reg.title": ("New registration", "नया पंजीकरण"),
    "reg.more": ("More (optional; F10 saves without them)", "और (वैकल्पिक; F10 इनके बिना भी सेव करता है)"),
    "revisit.title": ("Revisit", "पुनः आगमन"),
    "field.name": ("Name (English letters)", "नाम (अंग्रेज़ी अक्षरों में)"),
    "field.name_local": ("Name in local script", "नाम (हिंदी में)"),
    "field.sex": ("Sex M/F/O", "लिंग M/F/O"),
    "field.age_years": ("Age years", "आयु वर्ष"),
    "field.age_months": ("months", "महीने"),
    "field.age_days": ("days", "दिन"),
    "field.guardian_relation": ("Guardian S/O D/O W/O C/O", "अभिभावक S/O D/O W/O C/O"),
    "field.guardian_name": ("Guardian name", "अभिभावक का नाम"),
    "field.mobile": ("Mobile", "मोबाइल"),
    "field.abha_number": ("ABHA number", "आभा नंबर"),
    "field.address_line": ("Address", "पता"),
    "field.district": ("District", "ज़िला"),
    "field.state": ("State", "राज्य"),
    "field.pin": ("PIN code", "पिन कोड"),
    "field.category": ("Category", "श्रेणी"),
    "field.department": ("Department", "विभाग"),
    "field.unit": ("Unit", "यूनिट"),
    "field.fee": ("Fee ₹", "शुल्क ₹"),
    "field.mode": ("Payment cash/upi/card/waived", "भुगतान नकद/यूपीआई/कार्ड/माफ़"),
    "field.mode_ref": ("UTR / card slip no.", "UTR / कार्ड स्लिप नं."),
    "field.search": ("Find: UHID, offline no., mobile or name", "खोजें: UHID, ऑफ़लाइन नं., मोबाइल या नाम"),
    "field.tests": ("Add test (code or name)", "जाँच जोड़ें (कोड या नाम)"),
    "field.priority": ("Priority routine/urgent", "प्राथमिकता routine/urgent"),
    "field.receipt_no": ("Receipt number", "रसीद नंबर"),
    "field.reason": ("Reason", "कारण"),
    "field.supervisor": ("Supervisor ID", "सुपरवाइज़र आईडी"),
    "field.supervisor_pin": ("Supervisor PIN", "सुपरवाइज़र पिन"),
    "reg.fee_hint": ("Fee from master data: {fee}", "मास्टर डेटा से शुल्क: {fee}"),
    "reg.fee_exempt": ("Exempt category: fee waived", "छूट श्रेणी: शुल्क माफ़"),
    "reg.fee_none": ("No fee for this visit", "इस विज़िट का कोई शुल्क नहीं"),
    "reg.fee_locked": ("fee is set by master data", "शुल्क मास्टर डेटा से तय है"),
    "reg.saved": ("Saved {ref} · token {token}", "सेव हुआ {ref} · टोकन {token}"),
    "reg.saving": ("Saving…", "सेव हो रहा है…"),
    "reg.fix": ("Please correct the marked fields", "कृपया चिन्हित फ़ील्ड ठीक करें"),
    "reg.printed": ("Slip and receipt printed", "पर्ची और रसीद छप गईं"),
    "print.failed": ("PRINT FAILED (record is saved; F6 to reprint): {err}", "छपाई विफल (रिकॉर्ड सेव है; F6 से दोबारा छापें): {err}"),
    "save.failed": ("NOT SAVED: {err}", "सेव नहीं हुआ: {err}"),
    "revisit.none": ("No patient found", "कोई मरीज़ नहीं मिला"),
    "revisit.pick": ("Enter on a patient opens the visit", "मरीज़ पर Enter दबाकर विज़िट खोलें"),
    "revisit.selected": ("Patient: {name}", "मरीज़: {name}"),
    "revisit.select_first": ("Pick a patient first (Enter in the list)", "पहले मरीज़ चुनें (सूची में Enter)"),
    "lab.title": ("Lab request", "लैब जाँच"),
    "lab.total": ("Total: {total}", "कुल: {total}"),
    "lab.no_tests": ("Add at least one test", "कम से कम एक जाँच जोड़ें"),
    "lab.added": ("Added {code}", "{code} जोड़ा"),
    "lab.remove": ("^D removes the last test", "^D अंतिम जाँच हटाता है"),
    "lab.no_visit": ("This patient has no visit today: open a visit first (F3)", "इस मरीज़ की आज कोई विज़िट नहीं: पहले विज़िट खोलें (F3)"),
    "lab.saved": ("Lab order {ref} · sample {sample}", "लैब ऑर्डर {ref} · सैंपल {sample}"),
    "void.title": ("Void a payment", "भुगतान रद्द करें"),
    "void.not_supervisor": ("A supervisor's ID and PIN are required", "सुपरवाइज़र की आईडी और पिन ज़रूरी है"),
    "void.done": ("Voided {receipt}", "{receipt} रद्द किया गया"),
    "reprint.title": ("Reprint", "फिर से छापें"),
    "reprint.done": ("Sent to printer: {title}", "प्रिंटर को भेजा: {title}"),
    "reprint.failed_mark": ("NOT PRINTED", "नहीं छपा"),
    "queue.title": ("Sync queue", "सिंक कतार"),
    # the shown state is a word of the language too (Hindi mode said "waiting")
    "queue.page.waiting": ("Page {page} · waiting · F2 waiting  F3 synced  F4 flagged  PgUp/PgDn",
                           "पृष्ठ {page} · बाकी · F2 बाकी  F3 सिंक  F4 जाँच  PgUp/PgDn"),
    "queue.page.synced": ("Page {page} · synced · F2 waiting  F3 synced  F4 flagged  PgUp/PgDn",
                          "पृष्ठ {page} · सिंक · F2 बाकी  F3 सिंक  F4 जाँच  PgUp/PgDn"),
    "queue.page.flagged": ("Page {page} · flagged · F2 waiting  F3 synced  F4 flagged  PgUp/PgDn",
                           "पृष्ठ {page} · जाँच · F2 बाकी  F3 सिंक  F4 जाँच  PgUp/PgDn"),
    "cash.title": ("Day-end cash summary", "दिन का नकद सारांश"),
    "cash.print": ("F10 prints the summary", "F10 सारांश छापता है"),
    "cash.collected": ("Collected", "कुल जमा"),
    "cash.voids": ("Voided", "रद्द"),
    "col.patient_ref": ("UHID / offline no.", "UHID / ऑफ़लाइन नं."),
    "col.name": ("Name", "नाम"),
    "col.age_sex": ("Age/Sex", "आयु/लिंग"),
    "col.guardian": ("Guardian", "अभिभावक"),
    "col.mobile": ("Mobile", "मोबाइल"),
    "col.district": ("District", "ज़िला"),
    "col.seq": ("Seq", "क्रम"),
    "col.kind": ("Kind", "प्रकार"),
    "col.state": ("State", "स्थिति"),
    "col.record": ("Record", "रिकॉर्ड"),
    "col.recorded": ("Recorded", "दर्ज"),
    "col.reason": ("Reason", "कारण"),
    "col.number": ("Number", "नंबर"),
    "col.time": ("Time", "समय"),
    "col.printed": ("Printed", "छपा"),
    "col.mode": ("Mode", "तरीका"),
    "col.count": ("Count", "संख्या"),
    "col.total": ("Total", "कुल"),
    "common.required": ("is required", "ज़रूरी है"),
    "common.done": ("Done", "हो गया"),
    "common.working": ("Working…", "काम चल रहा है…"),
    "common.failed": ("FAILED: {err}", "विफल: {err}"),
    "lang.switched": ("Language: English", "भाषा: हिंदी"),
    "dupes.title": ("This patient may already be registered:", "यह मरीज़ शायद पहले से पंजीकृत है:"),
    "dupes.keys": ("Enter take this patient (revisit)  F10 new patient anyway  Esc back to the form",
                   "Enter यही मरीज़ लें (पुनः आगमन)  F10 फिर भी नया मरीज़  Esc फ़ॉर्म पर वापस"),
    # the lab's collection desk (F1)
    "keys.collect": (
        "Scan+Enter show  Enter collected  ^R refuse  Tab list  Esc Back  F9 हिंदी  ^L Lock",
        "स्कैन+Enter दिखाएँ  Enter लिया  ^R अस्वीकार  Tab सूची  Esc वापस  F9 English  ^L लॉक",
    ),
    "collect.title": ("Sample collection", "सैंपल संग्रह"),
    "collect.scan": ("scan the tube's barcode (or type its sample id) + Enter",
                     "ट्यूब का बारकोड स्कैन करें (या सैंपल आईडी लिखें) + Enter"),
    "collect.scan_first": ("Scan a tube first", "पहले ट्यूब स्कैन करें"),
    "collect.armed": ("Enter: collected · ^R: refused (reason)", "Enter: सैंपल लिया · ^R: अस्वीकार (कारण)"),
    "collect.order_line": ("Order {order} ({device}) · {paid} · {state}", "ऑर्डर {order} ({device}) · {paid} · {state}"),
    "collect.paid": ("PAID", "भुगतान हुआ"),
    "collect.unpaid": ("NOT PAID", "भुगतान नहीं"),
    "collect.yes": ("paid", "हाँ"),
    "collect.no": ("NOT PAID", "नहीं"),
    "collect.state.ordered": ("to collect", "लेना बाकी"),
    "collect.state.collected": ("collected", "लिया गया"),
    "collect.state.rejected": ("refused: draw again", "अस्वीकार: फिर से लें"),
    "collect.short.ordered": ("to collect", "लेना है"),
    "collect.short.collected": ("collected", "लिया"),
    "collect.short.rejected": ("REFUSED", "अस्वीकार"),
    "collect.saved": ("Collected {sample} at {time} · {name}", "{sample} लिया गया {time} · {name}"),
    "collect.refused": ("Refused {sample} ({reason}) · label printed again for a new draw",
                        "{sample} अस्वीकार ({reason}) · नए सैंपल के लिए लेबल फिर छपा"),
    "collect.pick_reason": ("Why is {sample} refused? ↑↓ Enter or 1-5 · Esc cancel",
                            "{sample} क्यों अस्वीकार? ↑↓ Enter या 1-5 · Esc रद्द"),
    "collect.todo": ("Still to collect today, whole hospital: {n}", "आज लेना बाकी, पूरा अस्पताल: {n}"),
    "collect.err.unpaid": ("Order {order} is NOT PAID: send the patient to billing, then scan again",
                           "ऑर्डर {order} का भुगतान नहीं हुआ: मरीज़ को बिलिंग भेजें, फिर स्कैन करें"),
    "collect.err.already": ("{sample} was already collected at {time} by {who} ({where}): nothing recorded",
                            "{sample} पहले ही {time} पर {who} ({where}) ने लिया: कुछ दर्ज नहीं हुआ"),
    "collect.err.unknown": ("No tube {sample} in this counter's or the LAN's orders: check the label, or wait for "
                            "the hub and scan again",
                            "{sample} किसी ऑर्डर में नहीं मिली: लेबल जाँचें, या हब की प्रतीक्षा करके फिर स्कैन करें"),
    "reason.haemolysed": ("haemolysed", "हीमोलाइज़्ड"),
    "reason.clotted": ("clotted", "थक्का जमा"),
    "reason.insufficient": ("insufficient", "अपर्याप्त मात्रा"),
    "reason.mislabelled": ("mislabelled", "गलत लेबल"),
    "reason.other": ("other", "अन्य"),
    "col.sample": ("Sample", "सैंपल"),
    "col.patient": ("Patient", "मरीज़"),
    "col.tube": ("Tube", "ट्यूब"),
    "col.paid": ("Paid", "भुगतान"),
    "col.why": ("Why", "क्यों"),
    "review.gate": ("Review needs a supervisor", "समीक्षा के लिए सुपरवाइज़र ज़रूरी"),
    "review.head": ("{n} record(s) need a decision", "{n} रिकॉर्ड पर निर्णय बाकी"),
    "review.oldest": ("oldest {age} ago", "सबसे पुराना {age} पहले"),
    "review.supervisor": ("supervisor {sup}", "सुपरवाइज़र {sup}"),
    "review.nothing": ("Nothing waits for review.", "समीक्षा के लिए कुछ बाकी नहीं।"),
    "review.keys": ("l link  n new patient  m merge  c correct  x cancel  r retry  F5 reload  Esc back  F9 हिंदी",
                    "l जोड़ें  n नया मरीज़  m मिलाएँ  c सुधारें  x रद्द  r फिर भेजें  F5 ताज़ा  Esc वापस  F9 English"),
    "quit.title": ("Quit the counter? Something would be lost:", "काउंटर बंद करें? कुछ छूट जाएगा:"),
    "quit.form": ("a form is half filled (not saved)", "एक फ़ॉर्म आधा भरा है (सेव नहीं हुआ)"),
    "quit.print": ("a print is still on its way to the printer", "एक छपाई अभी प्रिंटर को जा रही है"),
    "discard.title": ("Discard this form? y/n", "यह फ़ॉर्म छोड़ दें? y/n"),
    "discard.keys": ("y discard what is typed   n / Esc keep filling", "y जो भरा है वह हटाएँ   n / Esc भरते रहें"),
    "quit.keys": ("y quit anyway   n / Esc go back", "y फिर भी बंद करें   n / Esc वापस जाएँ"),
    "field.waiver_reason": ("Waiver reason", "माफ़ी का कारण"),
    "cash.waivers": ("Waived {reason} (by {who})", "माफ़ {reason} ({who} द्वारा)"),
    "cash.voids_by": ("Voided (by {who})", "रद्द ({who} द्वारा)"),
    "cash.reprints_by": ("Reprints (by {who})", "पुनर्मुद्रण ({who} द्वारा)"),
    "sync.started": ("Background sync running", "पृष्ठभूमि सिंक चल रहा है"),
    # the billing desk (F12) and the desks
    "home.billing": ("F12 Billing (pay for any counter's order)", "F12 बिलिंग (किसी भी काउंटर का ऑर्डर)"),
    "home.collection": ("Sample collection", "सैंपल संग्रह"),
    "home.desk": ("Desk: {desk}", "डेस्क: {desk}"),
    "desk.registration": ("registration", "पंजीकरण"),
    "desk.billing": ("billing", "बिलिंग"),
    "desk.collection": ("sample collection", "सैंपल संग्रह"),
    "desk.all": ("all work", "सभी काम"),
    "keys.billing": (
        "Enter next/choose  F10 Pay  Esc Back  F9 हिंदी  ^L Lock  ^Q Quit",
        "Enter आगे/चुनें  F10 भुगतान  Esc वापस  F9 English  ^L लॉक  ^Q बंद",
    ),
    "billing.title": ("Billing: find the patient, pay a lab order", "बिलिंग: मरीज़ खोजें, लैब ऑर्डर का भुगतान"),
    "billing.head": ("{name} {age_sex} · {ref} · due {due}", "{name} {age_sex} · {ref} · बाकी {due}"),
    "billing.visits": ("Visits: {visits}", "विज़िट: {visits}"),
    "billing.no_orders": ("This patient has no lab order", "इस मरीज़ का कोई लैब ऑर्डर नहीं"),
    "billing.nothing_due": ("Nothing is due: every order is paid", "कुछ बाकी नहीं: हर ऑर्डर का भुगतान हो चुका"),
    "billing.choose": ("↑↓ choose the order, Enter, then F10 to take the payment",
                       "↑↓ ऑर्डर चुनें, Enter, फिर भुगतान के लिए F10"),
    "billing.chosen": ("Order {ref}: {due} due · payment mode, then F10", "ऑर्डर {ref}: {due} बाकी · भुगतान का तरीका, फिर F10"),
    "billing.already_paid": ("Order {ref} is already paid: nothing is due", "ऑर्डर {ref} का भुगतान हो चुका: कुछ बाकी नहीं"),
    "billing.paid": ("Paid {amount} for {ref} · receipt {receipt} · {labels} label(s)",
                     "{ref} के लिए {amount} मिले · रसीद {receipt} · {labels} लेबल"),
    "lab.pay_at_billing": ("Lab order {ref} saved, to pay at billing (labels print there)",
                           "लैब ऑर्डर {ref} सेव, भुगतान बिलिंग पर (लेबल वहीं छपेंगे)"),
    "hint.new": ("New", "नया"),
    "hint.revisit": ("Revisit", "पुनः"),
    "hint.lab": ("Lab", "लैब"),
    "hint.billing": ("Billing", "बिलिंग"),
    "hint.collection": ("Collection", "संग्रह"),
    "hint.void": ("Void", "रद्द"),
    "hint.reprint": ("Reprint", "पुनर्मुद्रण"),
    "hint.queue": ("Queue", "कतार"),
    "hint.cash": ("Cash", "नकद"),
    "hint.review": ("Review", "समीक्षा"),
    "hint.lang": ("F9 हिंदी", "F9 English"),
    "hint.lock": ("^L Lock", "^L लॉक"),
    "hint.quit": ("^Q Quit", "^Q बंद"),
    "hint.clock": ("^T Clock", "^T घड़ी"),  # shown while the clock waits for a supervisor
    # the clock's confirmation (ctrl+t, tui/screens/clock.py)
    "clock.title": ("The PC's clock is wrong: confirm the date", "पीसी की घड़ी गलत है: तारीख की पुष्टि करें"),
    "clock.pc": ("This PC:  {time}", "यह पीसी:  {time}"),
    "clock.hub": ("LAN hub:  {time}", "LAN हब:   {time}"),
    "clock.central": ("Central:  {time}", "केंद्र:    {time}"),
    "clock.off": ("This PC's clock does not agree with the hub's or central's",
                  "इस पीसी की घड़ी हब या केंद्र की घड़ी से मेल नहीं खाती"),
    "clock.ok": ("The clock agrees with the hub's or central's: nothing to confirm",
                 "घड़ी हब या केंद्र से मेल खाती है: पुष्टि की ज़रूरत नहीं"),
    "clock.none": ("Not compared with the hub or central yet", "अभी हब या केंद्र से मिलान नहीं हुआ"),
    "clock.already": ("Confirmed by {sup}: saving works", "{sup} ने पुष्टि की: सेव हो सकता है"),
    "clock.ask": ("A supervisor confirms this PC's date is used anyway (audited); IT sets the clock.",
                  "सुपरवाइज़र पुष्टि करें कि यही तारीख चलेगी (दर्ज होगा); IT घड़ी ठीक करे।"),
    "clock.need_id": ("Enter the supervisor's ID", "सुपरवाइज़र की आईडी लिखें"),
    "clock.keys": ("Enter next / confirm  Esc back", "Enter आगे / पुष्टि  Esc वापस"),
    "clock.done": ("Clock confirmed by {sup}: saving works again. Have the date and time set soon.",
                   "{sup} ने घड़ी की पुष्टि की: सेव फिर से होगा। तारीख और समय जल्द ठीक करवाएँ।"),
    "clock.refused": ("^T: a supervisor confirms the date here", "^T: सुपरवाइज़र यहीं तारीख की पुष्टि करें"),
    "field.lab_mode": ("Payment cash/upi/card/waived/billing", "भुगतान नकद/यूपीआई/कार्ड/माफ़/बिलिंग पर"),
    "void.already": ("ALREADY VOIDED", "पहले ही रद्द"),
    "col.order": ("Order", "ऑर्डर"),
    "col.counter": ("Counter", "काउंटर"),
    "col.tests": ("Tests", "जाँचें"),
    "col.due": ("Due", "बाकी"),
}

FIELD_LABELS_HI: dict[str, str] = {
    "name": "नाम",
    "name_local": "हिंदी नाम",
    "sex": "लिंग",
    "age_years": "आयु (वर्ष)",
    "age_months": "आयु (महीने)",
    "age_days": "आयु (दिन)",
    "birth_date": "जन्म तिथि",
    "guardian_relation": "अभिभावक संबंध",
    "guardian_name": "अभिभावक का नाम",
    "mobile": "मोबाइल",
    "abha_number": "आभा नंबर",
    "address_line": "पता",
    "district": "ज़िला",
    "state": "राज्य",
    "pin": "पिन कोड",
    "category": "श्रेणी",
    "department": "विभाग",
    "unit": "यूनिट",
    "tests": "जाँचें",
    "amount_paise": "राशि",
    "fee": "शुल्क",
    "mode": "भुगतान का तरीका",
    "mode_ref": "भुगतान संदर्भ",
    "items": "शुल्क मदें",
    "reason": "कारण",
    "receipt_no": "रसीद नंबर",
    "patient": "मरीज़",
    "visit": "विज़िट",
    "operator": "ऑपरेटर",
    "pin_login": "पिन",
    "supervisor": "सुपरवाइज़र",
    "supervisor_pin": "सुपरवाइज़र पिन",
    "waiver_reason": "माफ़ी का कारण",
}

# The English sentences of rules.py / payloads.py, and their Hindi.
_MESSAGE_HI: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^is required$"), "ज़रूरी है"),
    (re.compile(r"^must contain only digits.*"), "में केवल अंक होने चाहिए"),
    (re.compile(r"^must have (\d+) digits \(got (\d+)\)$"), r"में \1 अंक होने चाहिए (\2 लिखे)"),
    (re.compile(r"^must start with 6, 7, 8 or 9$"), "6, 7, 8 या 9 से शुरू होना चाहिए"),
    (re.compile(r"^must be 6 digits.*"), "6 अंकों का होना चाहिए, जैसे 226003"),
    (re.compile(r"^cannot start with 0$"), "0 से शुरू नहीं हो सकता"),
    (re.compile(r"^age in years must be between 0 and (\d+)$"), r"वर्ष 0 से \1 के बीच होने चाहिए"),
    (re.compile(r"^age in months must be between 0 and 11.*"), "महीने 0 से 11 के बीच होने चाहिए"),
    (re.compile(r"^age in days must be between 0 and 31.*"), "दिन 0 से 31 के बीच होने चाहिए"),
    (re.compile(r"^must be written in English letters.*"), "अंग्रेज़ी अक्षरों (A-Z) में लिखें; हिंदी नाम अलग फ़ील्ड में"),
    (re.compile(r"^is too long: at most (\d+) characters$"), r"बहुत लंबा है: अधिकतम \1 अक्षर"),
    (re.compile(r"^must be a whole number$"), "पूर्ण संख्या होनी चाहिए"),
    (re.compile(r"^must be an amount in rupees.*"), "रुपये में राशि लिखें, जैसे 10 या 10.50"),
    (re.compile(r"^must be one of (.*)$"), r"इनमें से एक होना चाहिए: \1"),
    (re.compile(r"^give the age .*"), "आयु (वर्ष, महीने या दिन) लिखें"),
    (re.compile(r"^give both the guardian relation.*"), "अभिभावक संबंध और नाम दोनों लिखें, या कोई नहीं"),
    (re.compile(r"^the (UPI transaction id \(UTR\)|card slip number) is required.*"), "UPI/कार्ड भुगतान के लिए संदर्भ नंबर ज़रूरी है"),
    (re.compile(r"^is not a known (department|unit|test).*"), "मास्टर डेटा में नहीं है"),
    (re.compile(r"^is not a valid .*"), "सही कोड नहीं है"),
    (re.compile(r"^contains characters that cannot be printed$"), "में ऐसे अक्षर हैं जो छप नहीं सकते"),
    (re.compile(r"^cannot be more than the master-data fee.*"), "मास्टर डेटा शुल्क से अधिक नहीं हो सकता"),
    (re.compile(r"^can only be changed.*"), "केवल नियम अनुसार बदला जा सकता है"),
    (re.compile(r"^is required for a waiver.*"), "इस श्रेणी के नियम माफ़ी नहीं देते: कारण और सुपरवाइज़र की आईडी/पिन ज़रूरी"),
    (re.compile(r"^a waiver for a \w+ patient needs a reason$"), "माफ़ी का कारण लिखें"),
    (re.compile(r"^a waiver for a \w+ patient needs a supervisor.*"), "माफ़ी के लिए सुपरवाइज़र की आईडी और पिन ज़रूरी"),
    (re.compile(r"^wrong supervisor ID or PIN.*"), "गलत सुपरवाइज़र आईडी या पिन"),
    (re.compile(r"^must be 4 to 8 digits$"), "4 से 8 अंकों का होना चाहिए"),
    (re.compile(r"^this counter's clock is .*"), "इस काउंटर की घड़ी गलत है: IT से तारीख और समय ठीक करवाएँ; "
     "तब तक सुपरवाइज़र तारीख की पुष्टि करें"),
]


def lang_of(app: object) -> Lang:
    """The language an app (or anything with ``lang``) shows; English when it has none."""
    return "hi" if getattr(app, "lang", "en") == "hi" else "en"


def tr(key: str, lang: Lang = "en", **kwargs: object) -> str:
    """The text for ``key`` in ``lang``, formatted with ``kwargs``."""
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "hi" and pair[1] else pair[0]
    return text.format(**kwargs) if kwargs else text


def field_label(field: str, lang: Lang = "en") -> str:
    head = field.split(".")[0]
    if lang == "hi" and head in FIELD_LABELS_HI:
        return FIELD_LABELS_HI[head]
    return FIELD_LABELS.get(head, head.replace("_", " ").capitalize()) if head else ("रिकॉर्ड" if lang == "hi" else "Record")


def message(text: str, lang: Lang = "en") -> str:
    """A rule's English sentence in ``lang`` (unknown sentences stay English)."""
    if lang != "hi":
        return text
    for pattern, hindi in _MESSAGE_HI:
        if pattern.match(text):
            return pattern.sub(hindi, text)
    return text


def problem_text(problem: FieldProblem, lang: Lang = "en") -> str:
    """'Mobile: must start with 6, 7, 8 or 9' / 'मोबाइल: 6, 7, 8 या 9 से शुरू होना चाहिए'."""
    return f"{field_label(problem.field, lang)}: {message(problem.message, lang)}"

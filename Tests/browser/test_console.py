"""The web console in a real browser against a real `herald serve` (see conftest.py).

The tests run in file order and share one browser and one server: each creates its own queues.
"""

import json
import time

from conftest import (ADMIN_KEY, SCOPED_ENTITY, SCOPED_KEY, URL, Api, click, confirm, herald_keys, now_ms, screenshot,
                      sign_in, text_of, wait)
from selenium.webdriver.common.by import By


def dismiss_jobs(driver):
    """Dismisses every ended job of the jobs bar."""
    def dismissed(d):
        buttons = d.find_elements(By.CSS_SELECTOR, "#jobs button.dismiss")
        for button in buttons:
            button.click()
        return not buttons
    wait(driver, dismissed, message="the jobs dismissed")


def cell(driver, entity, column):
    return text_of(driver, f'tr[data-entity="{entity}"] td.{column}')


def test_sign_in(browser):
    browser.get(URL + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(URL + "/")
    wait(browser, lambda d: d.find_element(By.ID, "key").is_displayed(), message="the sign-in form")
    screenshot(browser, "sign-in.png")
    # A wrong key is refused, and nothing else is shown.
    browser.find_element(By.ID, "key").send_keys("hk_000000000000_" + "0" * 64)
    click(browser, "#sign-in-form button[type=submit]")
    wait(browser, lambda d: "refused" in d.find_element(By.ID, "sign-in-error").text, message="the refusal")
    assert browser.find_elements(By.CSS_SELECTOR, "table.entities") == []
    assert browser.execute_script("return sessionStorage.getItem('herald.key')") is None

    sign_in(browser, ADMIN_KEY)
    assert "console-admin" in browser.find_element(By.ID, "who").text
    assert "manage" in browser.find_element(By.ID, "who").text
    # The key is in this tab's session storage only.
    assert browser.execute_script("return sessionStorage.getItem('herald.key')") == ADMIN_KEY
    assert browser.execute_script("return localStorage.length") == 0
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "table.entities"))


def test_counts_change_as_messages_are_sent(browser, api):
    api.create_queue("orders")
    browser.get(URL + "/#/")
    wait(browser, lambda d: cell(d, "orders", "active") == "0", message="orders with 0 active")
    api.send("orders", [{"messageId": f"order-{i}", "text": json.dumps({"order": i, "customer": "ada"}),
                         "contentType": "application/json", "applicationProperties": {"tenant": {"string": "north"}}}
                        for i in range(5)])
    wait(browser, lambda d: cell(d, "orders", "active") == "5", message="5 active")
    api.send("orders", [{"messageId": f"order-{i}", "text": "{}"} for i in range(5, 12)])
    wait(browser, lambda d: cell(d, "orders", "active") == "12", message="12 active")
    # The send rate comes from successive polls, and the chart has points.
    wait(browser, lambda d: cell(d, "orders", "send-rate") not in (None, "—", "0.0/s"), message="a send rate")
    assert browser.find_elements(By.CSS_SELECTOR, 'tr[data-entity="orders"] svg.chart polyline')
    assert cell(browser, "orders", "oldest") != "—"
    screenshot(browser, "entities.png")
    # A phone-sized screen: the rows become cards, nothing overflows sideways.
    browser.set_window_size(390, 844)
    try:
        wait(browser, lambda d: cell(d, "orders", "active") == "12")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px screen"
        screenshot(browser, "entities-phone.png")
    finally:
        browser.set_window_size(1280, 900)


def test_open_a_message(browser, api):
    hostile = '<img src=x onerror="document.title=1">'
    api.send("orders", [{"messageId": "hostile", "text": hostile, "subject": "<b>subject</b>"}])
    browser.get(URL + "/#/entity/queue/orders")
    first = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, '#messages-panel tr[data-sequence="1"] button.open'))
    first.click()
    detail = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, '.message-detail[data-sequence="1"]'))
    body = detail.find_element(By.CSS_SELECTOR, "pre.body").text
    assert body == json.dumps({"order": 0, "customer": "ada"}, indent=2), body
    assert "json" in detail.find_element(By.CSS_SELECTOR, "pre.body").get_attribute("class")
    properties = detail.find_element(By.CSS_SELECTOR, "table.properties").text
    assert "tenant" in properties and "north" in properties
    assert "order-0" in detail.text and "Delivery count" in detail.text
    screenshot(browser, "message.png")
    # A body and a subject that look like markup are shown as text, never run or parsed.
    row = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, '#messages-panel tr[data-sequence="13"]'))
    assert "<b>subject</b>" in row.text
    row.find_element(By.CSS_SELECTOR, "button.open").click()
    detail = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, '.message-detail[data-sequence="13"]'))
    assert detail.find_element(By.CSS_SELECTOR, "pre.body").text == hostile
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    assert browser.title == "Herald console"


def test_edit_options(browser, api):
    browser.get(URL + "/#/entity/queue/orders")
    field = wait(browser, lambda d: d.find_element(By.ID, "option-maxDeliveryCount"))
    field.clear()
    field.send_keys("7")
    lock = browser.find_element(By.ID, "option-lockDurationMs")
    lock.clear()
    lock.send_keys("45")
    click(browser, "#options-form button[type=submit]")
    wait(browser, lambda d: "Options saved" in d.find_element(By.ID, "status").text, message="saved")
    options = api.call("GET", "/v1/queues/orders")["options"]
    assert options["maxDeliveryCount"] == 7 and options["lockDurationMs"] == 45_000


def test_filter_dead_letters_by_reason_and_purge_them(browser, api):
    api.create_queue("payments")
    api.send("payments", [{"messageId": f"pay-{i}", "text": f"payment {i}", "subject": "card" if i % 2 else "wire"} for i in range(6)])
    api.dead_letter_all("payments", lambda m: "Timeout" if int(m["message"]["messageId"][4:]) < 4 else "BadFormat")
    browser.get(URL + "/#/dead-letters/queue/payments")
    reason = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, 'button.group[data-value="Timeout"]'))
    assert reason.text == "Timeout: 4"
    assert browser.find_element(By.CSS_SELECTOR, 'button.group[data-value="BadFormat"]').text == "BadFormat: 2"
    click(browser, 'button.group[data-value="Timeout"]')
    wait(browser, lambda d: "4 match" in (text_of(d, ".summary .matching") or ""), message="4 matching")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.messages tbody tr[data-sequence]")) == 4, message="4 rows")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.messages tbody tr[data-sequence]")
    assert all("Timeout" in row.text and "BadFormat" not in row.text for row in rows)
    screenshot(browser, "dead-letters.png")
    # Searching by body text narrows it further.
    browser.find_element(By.ID, "filter-bodyContains").send_keys("payment 3")
    click(browser, "#dead-letter-search button[type=submit]")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.messages tbody tr[data-sequence]")) == 1, message="1 row")
    # And by time (UTC): nothing was enqueued before 2000, all of it after.
    click(browser, "#dead-letter-search button[type=reset]")
    browser.execute_script("document.getElementById('filter-enqueuedBefore').value = '2000-01-01T00:00'")
    click(browser, "#dead-letter-search button[type=submit]")
    wait(browser, lambda d: "0 match" in (text_of(d, ".summary .matching") or ""), message="none before 2000")
    wait(browser, lambda d: "No messages" in d.find_element(By.CSS_SELECTOR, "table.messages tbody").text, message="no rows")
    browser.execute_script("document.getElementById('filter-enqueuedBefore').value = ''")
    browser.execute_script("document.getElementById('filter-enqueuedFrom').value = '2000-01-01T00:00'")
    click(browser, "#dead-letter-search button[type=submit]")
    wait(browser, lambda d: "6 match" in (text_of(d, ".summary .matching") or ""), message="all after 2000")

    # Purge the Timeout ones: select all matching the reason, confirm, follow the job.
    click(browser, "#dead-letter-search button[type=reset]")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.messages tbody tr[data-sequence]")) == 6, message="6 rows")
    click(browser, 'button.group[data-value="Timeout"]')
    wait(browser, lambda d: "4 match" in (text_of(d, ".summary .matching") or ""), message="4 matching")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.messages tbody tr[data-sequence]")) == 4, message="4 rows")
    click(browser, "#select-all")
    assert "All 4 matching" in browser.find_element(By.CSS_SELECTOR, ".selection-text").text
    click(browser, "#bulk-purge")
    confirm(browser)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#jobs li.job[data-state="completed"]'), message="the purge job")
    summary = api.call("POST", "/v1/dead-letters/summary", {"entity": {"queue": "payments"}})
    assert summary["total"] == 2 and summary["reasons"] == [{"value": "BadFormat", "count": 2}]
    dismiss_jobs(browser)


def test_bulk_resubmit_of_1000_dead_letters(browser, api):
    api.create_queue("bulk", maxDeliveryCount=10)
    ids = [f"bulk-{i:04d}" for i in range(1000)]
    api.send("bulk", [{"messageId": message_id, "text": f"item {message_id}"} for message_id in ids])
    api.dead_letter_all("bulk", lambda m: "Poison")
    assert api.counts("bulk")["deadLettered"] == 1000

    browser.get(URL + "/#/dead-letters/queue/bulk")
    wait(browser, lambda d: "1,000 dead letter(s)" in (text_of(d, ".summary .totals") or ""), message="1,000 dead letters")
    click(browser, "#select-all")
    assert "All 1,000 matching" in browser.find_element(By.CSS_SELECTOR, ".selection-text").text
    click(browser, "#bulk-resubmit")
    dialog = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "dialog#confirm[open]"))
    assert "Resubmit 1,000" in dialog.text
    confirm(browser)
    # Read inside the wait: the jobs bar redraws as the job progresses.
    job_id = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#jobs li.job").get_attribute("data-job"), message="the job's progress")
    assert browser.find_elements(By.CSS_SELECTOR, "#jobs progress")
    screenshot(browser, "bulk-job.png")
    # A reload finds the job again (running, or ended a moment ago) and shows its progress.
    browser.refresh()
    done = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, f'#jobs li.job[data-job="{job_id}"][data-state="completed"]'),
                timeout=120, message="the job completed after a reload")
    assert "1,000 of 1,000" in done.text and "applied 1,000" in done.text

    # Every dead letter is back in the queue once: none lost, none twice.
    counts = api.counts("bulk")
    assert counts["deadLettered"] == 0 and counts["active"] == 1000, counts
    back = [m["message"]["messageId"] for m in api.peek_all({"queue": "bulk"})]
    assert len(back) == 1000 and sorted(back) == ids
    dismiss_jobs(browser)


def test_purge(browser, api):
    browser.get(URL + "/#/entity/queue/bulk")
    wait(browser, lambda d: d.find_element(By.ID, "purge")).click()
    dialog = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "dialog#confirm[open]"))
    assert "Purge bulk" in dialog.text
    confirm(browser)
    wait(browser, lambda d: "Purged 1000 message(s)" in d.find_element(By.ID, "status").text, message="the purge")
    assert api.counts("bulk")["active"] == 0


def test_cancel_a_scheduled_message(browser, api):
    api.create_queue("reminders")
    later = now_ms() + 3_600_000
    api.send("reminders", [{"messageId": "soon", "text": "tomorrow", "scheduledEnqueueTime": later},
                           {"messageId": "now", "text": "today"}])
    assert api.counts("reminders")["scheduled"] == 1
    browser.get(URL + "/#/entity/queue/reminders")
    wait(browser, lambda d: d.find_element(By.ID, "tab-scheduled")).click()
    cancel = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#scheduled-panel button.cancel-scheduled"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#scheduled-panel tr[data-sequence]")) == 1
    screenshot(browser, "scheduled.png")
    cancel.click()
    confirm(browser)
    wait(browser, lambda d: "0 scheduled message(s)" in d.find_element(By.ID, "scheduled-panel").text, message="cancelled")
    counts = api.counts("reminders")
    assert counts["scheduled"] == 0 and counts["active"] == 1


def test_phone_sized_pages(browser):
    browser.set_window_size(390, 844)
    try:
        for name, address, ready in [
            ("entity-phone.png", "/#/entity/queue/orders", '#messages-panel tr[data-sequence="1"]'),
            ("dead-letters-phone.png", "/#/dead-letters/queue/payments", "table.messages tbody tr[data-sequence]"),
        ]:
            browser.get(URL + address)
            wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ready), message=name)
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= 390, f"{address} is {width} px wide on a 390 px screen"
            screenshot(browser, name)
    finally:
        browser.set_window_size(1280, 900)


def test_overview_and_a_topic(browser, api):
    """The entities page once every entity has a few samples (docs/console.png is its screenshot)."""
    api.call("PUT", "/v1/topics/events")
    api.call("PUT", "/v1/topics/events/subscriptions/audit")
    browser.get(URL + "/#/")
    wait(browser, lambda d: cell(d, "payments", "deadLettered") == "⚠ 2", message="payments' dead letters")
    for batch in range(4):
        api.send("orders", [{"messageId": f"late-{batch}-{i}", "text": "{}"} for i in range(5 * batch)])
        api.call("POST", "/v1/messages/send", {"entity": {"topic": "events"}, "messages": [{"text": "{}"}] * (batch + 1)})
        time.sleep(2)
    wait(browser, lambda d: cell(d, "events/subscriptions/audit", "active") == "10", message="the subscription's messages")
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-entity="events"]').get_attribute("data-kind") == "topic"
    screenshot(browser, "overview.png")
    # A topic's page lists its subscriptions; a subscription without sessions has no Sessions tab.
    browser.get(URL + "/#/entity/topic/events")
    link = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "ul.subscriptions a"))
    assert link.text == "events/subscriptions/audit"
    link.click()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#messages-panel tr[data-sequence]"), message="the subscription's messages")
    wait(browser, lambda d: d.find_elements(By.ID, "options-form") and not d.find_elements(By.ID, "tab-sessions"), message="no Sessions tab")


def test_sessions(browser, api):
    api.create_queue("checkout", requiresSession=True, parkSessionOnDeadLetter=True)
    api.call("POST", "/v1/messages/send", {"entity": {"queue": "checkout"}, "messages": [
        {"sessionId": "cart-1", "text": "a"}, {"sessionId": "cart-2", "text": "b"}, {"sessionId": "cart-2", "text": "c"},
        {"sessionId": "cart-3", "text": "d"}]})
    # cart-1 held by a receiver; cart-2 parked by a dead letter; cart-3 free.
    api.call("POST", "/v1/sessions/accept", {"entity": {"queue": "checkout"}, "sessionId": "cart-1"})
    parked = api.call("POST", "/v1/sessions/accept", {"entity": {"queue": "checkout"}, "sessionId": "cart-2"})
    first = api.call("POST", "/v1/sessions/receive", {"session": parked, "maxCount": 1})["messages"][0]
    api.call("POST", "/v1/locks/dead-letter", {"lockToken": first["lockToken"], "reason": "Broken"})
    api.call("POST", "/v1/sessions/release", {"session": parked})
    browser.get(URL + "/#/entity/queue/checkout")
    wait(browser, lambda d: d.find_element(By.ID, "tab-sessions")).click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sessions-panel tr[data-session]")) == 3, message="3 sessions")

    def session_text(name):
        return browser.find_element(By.CSS_SELECTOR, f'#sessions-panel tr[data-session="{name}"]').text

    assert "locked until" in session_text("cart-1") and "parked" not in session_text("cart-1")
    assert "parked by a dead letter" in session_text("cart-2") and "free" in session_text("cart-2")
    assert "free" in session_text("cart-3") and "parked" not in session_text("cart-3")
    screenshot(browser, "sessions.png")


def test_move_dead_letters_to_another_queue(browser, api):
    before = api.counts("reminders")["active"]
    browser.get(URL + "/#/dead-letters/queue/payments")
    # A completed job left by an earlier test must not pass for this one's.
    dismiss_jobs(browser)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.messages tbody tr[data-sequence]")) == 2, message="2 rows")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#move-target option[value*="reminders"]'), message="the targets")
    click(browser, "#select-page")
    assert "2 selected" in browser.find_element(By.CSS_SELECTOR, ".selection-text").text
    click(browser, '#move-target option[value*="reminders"]')
    click(browser, "#bulk-move")
    dialog = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "dialog#confirm[open]"))
    assert "Move 2 dead letter(s) of payments to reminders" in dialog.text
    confirm(browser)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#jobs li.job[data-state="completed"]'), message="the move job")
    assert api.counts("payments")["deadLettered"] == 0
    assert api.counts("reminders")["active"] == before + 2
    moved = sorted(m["message"]["messageId"] for m in api.peek_all({"queue": "reminders"}) if m["message"]["messageId"].startswith("pay-"))
    assert moved == ["pay-4", "pay-5"]
    dismiss_jobs(browser)


def test_a_scoped_key_sees_only_its_entities(browser, api):
    api.create_queue(SCOPED_ENTITY)
    Api(SCOPED_KEY).send(SCOPED_ENTITY, [{"messageId": "mine", "text": "hello"}])
    click(browser, "#sign-out")
    sign_in(browser, SCOPED_KEY)
    assert f"limited to {SCOPED_ENTITY}" in browser.find_element(By.ID, "who").text
    wait(browser, lambda d: cell(d, SCOPED_ENTITY, "active") == "1", message="its queue")
    rows = [row.get_attribute("data-entity") for row in browser.find_elements(By.CSS_SELECTOR, "table.entities tbody tr")]
    assert rows == [SCOPED_ENTITY]
    screenshot(browser, "scoped.png")
    # Without manage: no purge, no options to change, no bulk actions.
    browser.get(URL + f"/#/entity/queue/{SCOPED_ENTITY}")
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, '#messages-panel tr[data-sequence="1"]'))
    assert browser.find_elements(By.ID, "purge") == []
    assert browser.find_elements(By.ID, "options-form") == []
    browser.get(URL + f"/#/dead-letters/queue/{SCOPED_ENTITY}")
    wait(browser, lambda d: "Bulk actions need the manage right" in d.find_element(By.ID, "view").text)
    assert browser.find_elements(By.ID, "bulk-resubmit") == []
    # Another entity's page answers that the key cannot see it.
    browser.get(URL + "/#/entity/queue/orders")
    wait(browser, lambda d: "cannot see it" in d.find_element(By.ID, "view").text, message="refused")


def test_a_revoked_key_is_asked_for_again(browser):
    key = herald_keys("create", "--name", "short-lived", "--rights", "listen", "--entity", SCOPED_ENTITY)
    key_id = key.split("_")[1]
    # The server rereads its key file within a second: the new key is accepted once it has.
    deadline = time.time() + 10
    while "name" not in Api(key).call("GET", "/v1/whoami", expected=(200, 401)):
        assert time.time() < deadline, "the server never accepted the new key"
        time.sleep(0.2)
    click(browser, "#sign-out")
    sign_in(browser, key)
    wait(browser, lambda d: cell(d, SCOPED_ENTITY, "active") == "1", message="its queue")
    herald_keys("revoke", key_id)
    # The server rereads its key file within a second; the next refresh is refused, and the page
    # forgets the key and asks for one.
    wait(browser, lambda d: d.find_element(By.ID, "key").is_displayed(), timeout=15, message="the sign-in form")
    assert "refused" in browser.find_element(By.ID, "sign-in-error").text
    assert browser.execute_script("return sessionStorage.getItem('herald.key')") is None


def test_no_content_security_policy_violations(browser):
    problems = [entry["message"] for entry in browser.get_log("browser")
                if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]]
    assert problems == []

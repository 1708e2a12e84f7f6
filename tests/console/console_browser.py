#!/usr/bin/env python3
"""Drives fleetd's web console in headless Chromium (Debian's chromium-driver).

Logs in with a viewer token, finds the failed canary of rollout 'canary-bad' with its
gate's value, sees 'canary-control' drawn canary against control, is refused a pause of
'steady' and the creation of a rollout (the server's reason is shown), logs in with an
operator token, pauses 'steady' and creates 'from-form' through the form (a refused form
shows the server's message). Saves fleet.png, rollout.png, rollout-charts.png,
canary-control.png, rollout-create.png and compile-report.png in --out and prints their
paths. Exits non-zero naming the first check that failed.
"""
import argparse
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--viewer", required=True)
    p.add_argument("--operator", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    for old in ("fleet.png", "rollout.png", "rollout-charts.png", "canary-control.png",
                "rollout-create.png", "compile-report.png", "failure.png"):
        if os.path.exists(os.path.join(a.out, old)):
            os.remove(os.path.join(a.out, old))

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 15)
    shots = []

    def text_of(css):
        return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css))).text

    def check(ok, what):
        if not ok:
            raise AssertionError(what + "\npage:\n" + driver.find_element(By.TAG_NAME, "body").text)

    def shot(name):
        path = os.path.join(a.out, name)
        driver.save_screenshot(path)
        shots.append(path)

    def visit(hash_path, heading_id, heading_text):
        """Opens a page and waits until its heading is drawn (the page routes on the hash)."""
        driver.get(a.url + hash_path)
        wait.until(ec.text_to_be_present_in_element((By.ID, heading_id), heading_text))

    def fill_form(name, version, phases="50:3600,100:0"):
        """The create form: digits VERSION to the 'canary' devices in two phases."""
        for field, value in (("create-name", name), ("create-model", "digits"),
                             ("create-version", version), ("create-tags", "canary"),
                             ("create-phases", phases), ("create-gates", "accuracy >= 0.8")):
            e = driver.find_element(By.ID, field)
            e.clear()
            e.send_keys(value)

    def log_in(token):
        driver.get(a.url + "#/login")
        field = wait.until(ec.visibility_of_element_located((By.ID, "token")))
        field.clear()
        field.send_keys(token)
        driver.find_element(By.ID, "login-button").click()
        wait.until(ec.visibility_of_element_located((By.ID, "page-fleet")))

    try:
        log_in(a.viewer)
        check("8 devices" in text_of("#page-fleet"), "the fleet page shows 8 devices")
        check("digits v1" in text_of("main"), "the fleet page shows the model version")
        shot("fleet.png")

        visit("#/rollouts", "page-rollouts", "Rollouts")
        driver.find_element(By.LINK_TEXT, "canary-bad").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "page-rollout"), "canary-bad"))
        check("rolled_back" in text_of("#rollout-state"), "canary-bad is rolled back")
        page = text_of("main")
        check("0 (canary)" in page and "failed" in page, "the canary phase is shown failed")
        check("accuracy" in text_of("#decision") and "0.55" in text_of("#decision"),
              "the decision names the failing gate and its value 0.55")
        # The charts: the accuracy gate over time with its bound, the telemetry per artifact.
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#gate-chart-0 path.series")))
        check(len(driver.find_elements(By.CSS_SELECTOR, "#gate-chart-0 line.bound")) == 1,
              "the gate chart draws its bound")
        check("accuracy >= 0.8" in text_of("#gate-chart-0"), "the gate chart names the gate")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#telemetry-accuracy circle")) >= 1,
              "the telemetry chart plots the canary's accuracy")
        check("new" in text_of("#telemetry-accuracy"), "the telemetry legend marks the new model")
        driver.execute_script("document.getElementById('rollout-series').scrollIntoView()")
        shot("rollout-charts.png")
        driver.execute_script("window.scrollTo(0, 0)")
        shot("rollout.png")
        check(not driver.find_elements(By.ID, "canary-chart-0"),
              "an older report (no canary or reference) draws no canary chart")

        # Canary against control: both groups over time, the compared value's interval
        # against the bound, the verdict and the device counts.
        visit("#/rollouts/canary-control", "page-rollout", "Rollout canary-control")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#canary-chart-0 path.series")))
        check(len(driver.find_elements(By.CSS_SELECTOR, "#canary-chart-0 path.series")) == 2,
              "the canary chart draws two series")
        legend = text_of("#canary-chart-0")
        check("canary (12 devices)" in legend and "control (11 devices)" in legend,
              "the canary chart names both groups with their devices")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#gate-chart-0 polygon.interval")) == 1,
              "the compared value's interval is shaded")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#gate-chart-0 line.bound")) == 1,
              "the compared value is drawn against its bound")
        check(text_of("#gate-verdict-0") == "fail", "the latest verdict is fail")
        check(text_of("#gate-verdict-1") == "pass", "failure_rate passes")
        check(not driver.find_elements(By.ID, "canary-chart-1"),
              "failure_rate (no reference) draws no canary chart")
        check("control: 0.9500 (11 devices)" in text_of("main"),
              "the gates table shows the control group's value and devices")
        driver.execute_script("document.getElementById('rollout-series').scrollIntoView()")
        shot("canary-control.png")

        visit("#/rollouts/steady", "page-rollout", "Rollout steady")
        check("running" in text_of("#rollout-state"), "steady is running")
        driver.find_element(By.ID, "action-pause").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "action-message"), "needs role operator"))
        check("running" in text_of("#rollout-state"), "the viewer's pause changed nothing")

        # A viewer's form is refused by the server, and nothing is created.
        visit("#/rollouts", "page-rollouts", "Rollouts")
        driver.find_element(By.ID, "new-rollout-link").click()
        wait.until(ec.visibility_of_element_located((By.ID, "page-new-rollout")))
        fill_form("from-form", "1")
        driver.find_element(By.ID, "create-button").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "create-message"), "needs role operator"))

        driver.find_element(By.ID, "logout").click()
        log_in(a.operator)
        visit("#/rollouts/steady", "page-rollout", "Rollout steady")
        driver.find_element(By.ID, "action-pause").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "rollout-state"), "paused"))
        check("paused by console-operator" in text_of("#decision"), "the pause names the operator")

        # An operator creates a rollout through the form: a malformed field is named, a
        # refused one shows CreateRollout's message, a good one opens the running rollout.
        visit("#/new-rollout", "page-new-rollout", "New rollout")
        fill_form("from-form", "9", phases="50:x")
        driver.find_element(By.ID, "create-button").click()
        wait.until(ec.text_to_be_present_in_element(
            (By.ID, "create-message"), "phases take PERCENT:BAKE_SECONDS,... not '50:x'"))
        fill_form("from-form", "9")
        driver.find_element(By.ID, "create-button").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "create-message"),
                                                    "model 'digits' has no version 9"))
        fill_form("from-form", "1")
        shot("rollout-create.png")
        driver.find_element(By.ID, "create-button").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "page-rollout"), "Rollout from-form"))
        check("running" in text_of("#rollout-state"), "the created rollout runs")
        check("accuracy >= 0.8" in text_of("main"), "the created rollout has the form's gates")

        visit("#/models/digits/versions/1", "page-version", "compile report")
        check(len(driver.find_elements(By.CSS_SELECTOR, "svg.memory-plan rect")) == 6,
              "the memory plan draws 5 buffers in the arena")
        check("latency_ms" in text_of("main"), "the compile report shows the latency estimate")
        shot("compile-report.png")
    except Exception as e:  # noqa: BLE001 - any failure fails the test with its reason
        shot("failure.png")
        print("console browser check failed:", e)
        for path in shots:
            print("screenshot:", path)
        driver.quit()
        return 1
    driver.quit()
    for path in shots:
        print("screenshot:", path)
    print("console browser checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

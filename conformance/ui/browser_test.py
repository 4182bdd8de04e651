"""Drives Warren's web UI in a real browser (Debian's chromium, headless,
through selenium and chromedriver): logs in, creates a queue, publishes
to it, sees its depth change, gets the message back, moves messages to
another queue (a shovel), and checks the browser logged no error. Saves a screenshot of the queue's page.

Arguments: the management URL (http://host:port/), the screenshot path."""
import sys, tempfile

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as when
from selenium.webdriver.support.ui import Select, WebDriverWait

url, screenshot = sys.argv[1], sys.argv[2]

options = webdriver.ChromeOptions()
options.binary_location = '/usr/bin/chromium'
for flag in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--window-size=1280,900', f'--user-data-dir={tempfile.mkdtemp()}']:
    options.add_argument(flag)
options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
driver = webdriver.Chrome(service=webdriver.ChromeService('/usr/bin/chromedriver'), options=options)
wait = WebDriverWait(driver, 15)

def find(css):
    return wait.until(when.presence_of_element_located((By.CSS_SELECTOR, css)))

def fill(form, values):
    for name, value in values.items():
        field = find(f'#{form} [name="{name}"]')
        if field.tag_name == 'select':
            Select(field).select_by_value(value)
        else:
            field.clear()
            field.send_keys(value)
    find(f'#{form} button[type="submit"]').click()

try:
    driver.get(url)
    find('#login-user').send_keys('guest')
    find('#login-password').send_keys('guest')
    find('#login-submit').click()
    find('#total-ready')
    wait.until(when.invisibility_of_element_located((By.ID, 'login')))
    print('logged in, overview shown')

    driver.get(url + '#/queues')
    fill('add-queue', {'vhost': '/', 'name': 'ui-q', 'durable': 'true'})
    link = wait.until(when.presence_of_element_located((By.XPATH, "//table[@id='queues']//a[text()='ui-q']")))
    print('queue created and listed')
    link.click()
    wait.until(when.text_to_be_present_in_element((By.ID, 'queue-ready'), '0'))
    fill('publish-message', {'payload': 'hello from the browser'})
    wait.until(when.text_to_be_present_in_element((By.ID, 'queue-ready'), '1'))
    print('published; the depth shows 1')
    driver.save_screenshot(screenshot)
    fill('get-messages', {'count': '1', 'ackmode': 'ack_requeue_false'})
    wait.until(when.text_to_be_present_in_element((By.ID, 'got-messages'), 'hello from the browser'))
    print('got the message back')
    driver.refresh()
    wait.until(when.text_to_be_present_in_element((By.ID, 'queue-ready'), '0'))
    print('the depth shows 0 again')

    # Replaying a queue: two messages moved to another queue by a shovel.
    for payload in ('replay one', 'replay two'):
        fill('publish-message', {'payload': payload})
        wait.until(when.text_to_be_present_in_element((By.ID, 'queue-ready'), '1' if payload == 'replay one' else '2'))
    fill('move-messages', {'destination': 'ui-replayed'})
    wait.until(when.text_to_be_present_in_element((By.ID, 'move-status'), 'ui-replayed'))
    driver.get(url + '#/queue/%2F/ui-replayed')
    def moved(d):
        d.refresh()
        return find('#queue-ready').text == '2'
    WebDriverWait(driver, 15, poll_frequency=0.3).until(moved)
    print('moved 2 messages to ui-replayed')
    driver.get(url + '#/shovels')
    find('#shovels')
    print('shovels page shown')
    errors = [entry for entry in driver.get_log('browser') if entry['level'] == 'SEVERE']
    if errors:
        print('console errors:', errors)
        sys.exit(1)
    print('no console errors')
finally:
    driver.quit()

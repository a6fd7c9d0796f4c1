"""Mail the reports in this directory to RCPT over SMTP at HOST PORT, as
reporting organisations do (RFC 7489 §7.2.1.1: the XML gzipped or zipped;
RFC 8460 §5.3: multipart/report; report-type="tlsrpt" with a gzipped JSON
part), plus an ordinary message and a report whose attachment is damaged.
Usage: send.py HOST PORT RCPT"""
import gzip, io, os, smtplib, sys, zipfile
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

here = os.path.dirname(os.path.abspath(__file__))
host, port, rcpt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
read = lambda name: open(os.path.join(here, name), 'rb').read()

def dmarc(org, payload, filename, ctype):
    m = EmailMessage()
    m['From'] = f'noreply-dmarc@{org}'
    m['To'] = rcpt
    m['Subject'] = f'Report Domain: example.org Submitter: {org} Report-ID: <{filename}>'
    m.set_content(f'This is an aggregate report from {org}.')
    maintype, subtype = ctype.split('/')
    m.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return m

zipped = io.BytesIO()
with zipfile.ZipFile(zipped, 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('bigmail.example!example.org!1764547200!1764633599.xml', read('dmarc-bigmail.xml'))

tls = MIMEMultipart('report', report_type='tlsrpt')
tls['From'] = 'sts-reporting@company-x.example'
tls['To'] = rcpt
tls['Subject'] = 'Report Domain: example.org Submitter: company-x.example Report-ID: <5065427c>'
tls['TLS-Report-Domain'] = 'example.org'
tls['TLS-Report-Submitter'] = 'company-x.example'
tls.attach(MIMEText('This is an aggregate TLS report from company-x.example'))
part = MIMEApplication(gzip.compress(read('tls-companyx.json')), 'tlsrpt+gzip')
part.add_header('Content-Disposition', 'attachment',
                filename='company-x.example!example.org!1764547200!1764633599.json.gz')
tls.attach(part)

plain = EmailMessage()
plain['From'] = 'friend@example.net'
plain['To'] = rcpt
plain['Subject'] = 'lunch?'
plain.set_content('Not a report.')

messages = [
    dmarc('acme.example', gzip.compress(read('dmarc-acme.xml')),
          'acme.example!example.org!1764547200!1764633599.xml.gz', 'application/gzip'),
    dmarc('bigmail.example', zipped.getvalue(),
          'bigmail.example!example.org!1764547200!1764633599.zip', 'application/zip'),
    tls,
    plain,
    dmarc('broken.example', b'this is not gzip data',
          'broken.example!example.org!1764547200!1764633599.xml.gz', 'application/gzip'),
]
s = smtplib.SMTP(host, port, local_hostname='reporter.test')
for m in messages:
    s.sendmail(m['From'], [rcpt], m.as_bytes())
s.quit()

from django import forms
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.template.defaultfilters import filesizeformat

# The web page applies a file within the request, and gunicorn ends a request after 30 s.
# A 100,000-session caseload is about 40 MB and imports in about 20 s (bench/); a larger
# one goes through `manage.py import_caseload`, which has no such limit.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class SizeLimitHandler(FileUploadHandler):
    """Drops an uploaded file as soon as it passes the limit, before it fills memory or disk.

    The rest of the request is still read (and thrown away), so the browser gets the
    page with the message rather than a reset connection.
    """

    def __init__(self, request=None, limit=None):
        super().__init__(request)
        self.limit = MAX_UPLOAD_BYTES if limit is None else limit
        self.received = 0
        self.too_large = False

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            raise SkipFile
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler keeps the file


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Caseload file",
        help_text=f"A caseload file (JSON, format version 1 or 2), at most "
        f"{filesizeformat(MAX_UPLOAD_BYTES)}. Nothing is changed until you have seen the report "
        "and chosen to apply it.",
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )

    def __init__(self, *args, limit_handler=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit_handler = limit_handler

    def clean(self):
        handler = self.limit_handler
        if handler is not None and handler.too_large:
            self.errors.pop("file", None)
            self.add_error(
                "file",
                (
                    f"This file is larger than {filesizeformat(handler.limit)}, the most the "
                    "web page takes. Ask whoever runs the server to import it with "
                    "`manage.py import_caseload`, or split it into smaller files (records may "
                    "refer to ones already imported)."
                ),
            )
        return super().clean()


class ExportForm(forms.Form):
    kind = forms.ChoiceField(
        label="What to export",
        choices=[
            ("without_free_text", "Without free text: people and codes, no client names, notes or plans"),
            (
                "pseudonymised",
                "Pseudonymised: no names, e-mails or notes; stable pseudonyms for codes and usernames; "
                "dates kept exact",
            ),
        ],
        initial="pseudonymised",
        widget=forms.RadioSelect,
    )

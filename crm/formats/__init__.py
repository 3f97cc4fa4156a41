"""Django's display formats for both languages (settings.FORMAT_MODULE_PATH): the same as
crm.formatting's, so `{{ value }}`, `|date` and the admin show times as the pages do."""

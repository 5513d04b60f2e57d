"""The product's URLs plus the benchmark's baseline: a bare login-required page that renders
50 rows from one query, in the same base template as every page of the app; and an empty
one, what every request costs before its view does anything (bench/breakdown.py)."""

from django.http import HttpResponse
from django.template import engines
from django.urls import path

from config.urls import urlpatterns as product_urlpatterns
from sessions.models import Client

BASELINE = engines["django"].from_string("""{% extends "base.html" %}
{% block content %}
<h1>Clients</h1>
<table>
  <thead>
    <tr><th scope="col">Case code</th><th scope="col">Status</th><th scope="col">Since</th></tr>
  </thead>
  <tbody>
  {% for c in clients %}<tr><td>{{ c.code }}</td><td>{{ c.get_status_display }}</td>
    <td>{{ c.started_on|date:"j M Y" }}</td></tr>
  {% endfor %}
  </tbody>
</table>
{% endblock %}""")


def baseline(request):
    # Login is required by the middleware, as for every page of the app.
    clients = list(Client.objects.visible_to(request.user).order_by("code")[:50])
    return HttpResponse(BASELINE.render({"clients": clients}, request))


def empty(request):
    # Login is required by the middleware here too: its cost is what this page measures.
    return HttpResponse("")


urlpatterns = [*product_urlpatterns, path("bench/baseline/", baseline), path("bench/empty/", empty)]

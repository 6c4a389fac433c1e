"""Jury pages, under /projects/<slug>/jury/ (mounted at the site root in config/urls.py)."""
from django.urls import path

from jury import views

urlpatterns = [
    path("projects/<slug:slug>/jury/", views.run_list, name="jury-runs"),
    path("projects/<slug:slug>/jury/runs/<int:pk>/", views.run_detail, name="jury-run"),
    path("projects/<slug:slug>/jury/runs/<int:pk>/cancel/", views.run_cancel, name="jury-run-cancel"),
    path("projects/<slug:slug>/jury/items/<int:pk>/", views.item_detail, name="jury-item"),
]

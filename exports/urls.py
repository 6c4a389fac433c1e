"""Export pages, mounted at the site root (config/urls.py)."""
from django.urls import path

from exports import views

urlpatterns = [
    path("projects/<slug:slug>/exports/", views.export_page, name="exports"),
    path("projects/<slug:slug>/exports/<int:pk>/", views.export_detail, name="export-detail"),
    path("projects/<slug:slug>/exports/<int:pk>/export.zip", views.export_download_zip, name="export-download-zip"),
    path("projects/<slug:slug>/exports/<int:pk>/files/<path:name>", views.export_download, name="export-download"),
]

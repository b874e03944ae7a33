from django.contrib.admin.apps import AdminConfig


class LabelAdminConfig(AdminConfig):
    """The Django admin, for admins only (see annotations.admin_site)."""

    default_site = "annotations.admin_site.LabelAdminSite"

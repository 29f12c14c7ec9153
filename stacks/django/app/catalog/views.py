from django.views.generic import ListView

from catalog.models import Product


class ProductListView(ListView):
    """The products, 50 a page (?page=2...)."""

    model = Product
    paginate_by = 50
    template_name = "catalog/product_list.html"
